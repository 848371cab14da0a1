/**
 * The OpenAI completions fields this server does not implement. Clients of the official libraries (and tools
 * built on them) often send them with their neutral value (`echo: false`, `presence_penalty: 0`,
 * `logit_bias: {}`), so that value is accepted; any other is refused by name rather than silently ignored,
 * since ignoring it would return something other than what was asked. `user` is accepted and ignored.
 * `logprobs` is implemented, except with streaming (refused by name here) and beam search (validator.ts).
 */
import { HtError } from '../errors/domain-error.js';
import { summarise } from '../errors/summarise.js';
import type { CompletionBody } from '../schemas/completions.js';

function refuse(field: string, value: unknown, what: string, accepted: string): never {
  throw new HtError('HT_ERR_UNSUPPORTED_PARAMETER',
    `body.${field} is ${summarise(value)}; ${what} is not supported by this server: omit body.${field} or send ${accepted}`);
}

/** Throws HT_ERR_UNSUPPORTED_PARAMETER for the first field sent with a value that would change the answer. */
export function checkOpenAiFields(body: CompletionBody): void {
  if (body.logprobs != null && body.stream === true) {
    throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS',
      `body.logprobs is ${body.logprobs} and body.stream is true; log probabilities are returned only without streaming: omit body.logprobs or body.stream`);
  }
  if (body.echo === true) refuse('echo', body.echo, 'echoing the prompt', 'false');
  if (body.suffix != null && body.suffix !== '') refuse('suffix', body.suffix, 'a suffix (text after the completion)', 'null');
  const n = body.n ?? 1;
  if (body.best_of != null && body.best_of !== n) {
    refuse('best_of', body.best_of, `choosing the best of several candidates (best_of ≠ n; n is ${n})`, `null or the value of body.n (${n})`);
  }
  for (const field of ['presence_penalty', 'frequency_penalty'] as const) {
    const v = body[field];
    if (v != null && v !== 0) refuse(field, v, field.replace('_', ' '), '0');
  }
  if (body.logit_bias != null && Object.keys(body.logit_bias).length > 0) {
    refuse('logit_bias', body.logit_bias, 'logit_bias (its keys are token ids of OpenAI\'s tokenizers, not this model\'s)', 'null or {}');
  }
}
