/** The checks the validator is built from: each refusal names the parameter, the limit and the value. */
import type { Config } from '../config/index.js';
import { HtError, limitError } from '../errors/domain-error.js';
import type { Bundle } from '../inference/bundle.js';
import type { AdapterKindName } from '../inference/manifest.js';
import { encoderIds, serializeExamples, type TextTokenizer } from '../inference/tokenizer.js';

type Example = { input: string; output: string };

export function checkKind(bundle: Bundle, kind: AdapterKindName | undefined, param: string): AdapterKindName {
  const k = kind ?? bundle.manifest.adapters.default_kind;
  if (!bundle.kinds.includes(k)) {
    throw new HtError('HT_ERR_UNKNOWN_ADAPTER_KIND', `${param} is "${k}"; this model has ${JSON.stringify(bundle.kinds)}`);
  }
  return k;
}

/** Cheap checks on examples (counts, characters), before anything is tokenized. */
export function checkExamples(config: Pick<Config, 'MAX_EXAMPLES' | 'MAX_EXAMPLE_CHARS'>, bundle: Bundle, examples: readonly Example[], param: string): void {
  const manifestMax = bundle.manifest.hyper_input.max_examples;
  const max = Math.min(config.MAX_EXAMPLES, manifestMax);
  if (examples.length > max) {
    throw limitError('HT_ERR_TOO_MANY_EXAMPLES', `${param} length`, examples.length, max,
      max === manifestMax ? 'manifest hyper_input.max_examples' : 'MAX_EXAMPLES');
  }
  examples.forEach((ex, i) => {
    for (const field of ['input', 'output'] as const) {
      const chars = [...ex[field]].length;
      if (chars > config.MAX_EXAMPLE_CHARS) {
        throw limitError('HT_ERR_EXAMPLE_TOO_LONG', `${param}[${i}].${field} length (characters)`, chars, config.MAX_EXAMPLE_CHARS, 'MAX_EXAMPLE_CHARS');
      }
    }
  });
}

/** The hypermodel's token ids for these examples, or HT_ERR_EXAMPLES_TOO_LONG. */
export function hyperIds(bundle: Bundle, tok: TextTokenizer, examples: readonly Example[], param: string): number[] {
  const ids = encoderIds(tok, bundle.manifest, serializeExamples(bundle.manifest, examples));
  const max = bundle.manifest.hyper_input.max_tokens;
  if (ids.length > max) {
    throw limitError('HT_ERR_EXAMPLES_TOO_LONG', `${param} (serialized, in tokens)`, ids.length, max, 'manifest hyper_input.max_tokens');
  }
  return ids;
}

export function promptIds(bundle: Bundle, tok: TextTokenizer, prompt: string, param: string): number[] {
  const ids = encoderIds(tok, bundle.manifest, prompt);
  const max = bundle.manifest.encoder_input.max_tokens;
  if (ids.length > max) throw limitError('HT_ERR_INPUT_TOO_LONG', `${param} length in tokens`, ids.length, max, 'manifest encoder_input.max_tokens');
  return ids;
}

export function checkLimit(param: string, value: number, limit: number, variable: string): void {
  if (value > limit) throw limitError('HT_ERR_LIMIT_EXCEEDED', param, value, limit, variable);
}
