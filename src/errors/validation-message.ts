/**
 * The message of a schema refusal: the parameter (as `body.examples[0].input`), what is wrong, and a
 * bounded rendering of the value sent. Known misuses get a message that says what to do instead.
 */
import type { FastifyError, FastifyRequest } from 'fastify';
import { summarise } from './summarise.js';

type SchemaError = NonNullable<FastifyError['validation']>[number];

/** Longest key shown in a parameter name; a client may send a 100 KB key. */
const KEY_CHARS = 60;

/** Value at a JSON pointer such as "/examples/0/input", for naming what was sent. */
function pick(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** "/examples/0/input" -> ".examples[0].input", the way the rest of the service names parameters. */
function parameterPath(pointer: string): string {
  return pointer.split('/').slice(1).map((raw) => {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^(0|[1-9]\d*)$/.test(key)) return `[${key}]`;
    if (/^[A-Za-z_$][\w$]*$/.test(key)) return `.${key.slice(0, KEY_CHARS)}`;
    return `[${JSON.stringify(key.length > KEY_CHARS ? `${key.slice(0, KEY_CHARS)}…` : key)}]`;
  }).join('');
}

/**
 * The most specific of the errors: for a union (`prompt`: string or array of strings) ajv reports each
 * branch, and the one deepest in the value says what is wrong (`stop[0]` is empty, not "stop must be string").
 */
function mostSpecific(errors: readonly SchemaError[]): SchemaError {
  let best = errors[0]!;
  let depth = best.instancePath.split('/').length;
  for (const e of errors) {
    const d = e.instancePath.split('/').length;
    if (d > depth && e.keyword !== 'anyOf') {
      best = e;
      depth = d;
    }
  }
  return best;
}

const isTokenId = (v: unknown): boolean => Number.isInteger(v);
/** `[1,2,3]` or `[[1,2],[3]]`: OpenAI's token-id prompts, which need the server's tokenizer ids. */
function isTokenIdPrompt(v: unknown): boolean {
  if (!Array.isArray(v) || v.length === 0) return false;
  return v.every(isTokenId) || v.every((p) => Array.isArray(p) && p.length > 0 && p.every(isTokenId));
}

function wording(e: SchemaError): string {
  const params = e.params ?? {};
  if (e.keyword === 'minLength' && params.limit === 1) return 'must not be an empty string';
  return e.message ?? 'is invalid';
}

export function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const errors = err.validation;
  if (!errors?.length) return err.message;
  const ctx = err.validationContext ?? 'body';
  const source = { body: req.body, querystring: req.query, params: req.params, headers: req.headers }[ctx];
  if (ctx === 'body' && errors.some((e) => e.instancePath.startsWith('/prompt'))) {
    const prompt = pick(source, '/prompt');
    if (isTokenIdPrompt(prompt)) {
      return `body.prompt is an array of token ids (got ${summarise(prompt)}); token-id prompts are not supported: ` +
        'send the prompt as text (a string or an array of strings)';
    }
  }
  const first = mostSpecific(errors);
  const params = first.params ?? {};
  const pointer = first.instancePath + (typeof params.missingProperty === 'string' ? `/${params.missingProperty}` : '')
    + (typeof params.additionalProperty === 'string' ? `/${params.additionalProperty}` : '');
  const value = typeof params.additionalProperty === 'string' ? 'present' : describe(pick(source, pointer));
  return `${ctx}${parameterPath(pointer)} ${wording(first)} (got ${value})`;
}

function describe(v: unknown): string {
  return v === undefined ? 'missing' : summarise(v);
}
