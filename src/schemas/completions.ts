import { Type, type Static } from '@sinclair/typebox';
import { AdapterKind } from './common.js';
import { Example } from './adapters.js';

const PROMPT_DOC = 'A spreadsheet row with several cells is sent as one string with the cells joined by `" | "`.';

export const CompletionBody = Type.Object(
  {
    model: Type.String({
      minLength: 1,
      description: 'an adapter id (`ad-…`), or the base model name for the frozen T5 alone (see GET /v1/models)',
    }),
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
      description: `one prompt or an array of prompts; each gets \`n\` choices. Token-id prompts (arrays of integers) are refused (422): send text. ${PROMPT_DOC}`,
    }),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'most tokens to generate per choice (default: manifest generation.max_new_tokens)' })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, description: '0 = greedy; default 1 (as OpenAI); a tiny positive value samples almost greedily, never on NaN' })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'nucleus sampling mass (default 1; 0 keeps only the most likely token, as in OpenAI)' })),
    seed: Type.Optional(Type.Integer({ description: 'sampling seed; the same seed gives the same text' })),
    stop: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 })), Type.Null()], {
        description: 'stop sequences: generation ends before the first occurrence (finish_reason "stop"); an empty string is refused (422)',
      }),
    ),
    n: Type.Optional(Type.Integer({ minimum: 1, description: 'choices per prompt (default 1)' })),
    stream: Type.Optional(Type.Boolean({
      description: 'server-sent events in the OpenAI chunk format, ending with `data: [DONE]`. Once the stream has begun the status is ' +
        'HTTP 200 whatever happens: a stream cut short (REQUEST_DEADLINE_MS, the shutdown drain, a failed batch) ends with one error event ' +
        '`data: {"error":{"code","message"}}` (ErrorResponse) before `data: [DONE]`',
    })),
    stream_options: Type.Optional(
      Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), Type.Null()]),
    ),
    user: Type.Optional(Type.String({ description: 'ignored (OpenAI compatibility)' })),
    examples: Type.Optional(Type.Array(Example, {
      minItems: 1,
      description: 'extension: inline few-shot examples; the adapter is fetched or created, then used (`model` must be the base model)',
    })),
    adapter_kind: Type.Optional(AdapterKind),
    num_beams: Type.Optional(Type.Integer({ minimum: 1, description: 'extension: beam search width (needs temperature 0 or absent)' })),
  },
  { additionalProperties: false },
);
export type CompletionBody = Static<typeof CompletionBody>;

export const FinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length')]);

export const Usage = Type.Object({
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  total_tokens: Type.Integer(),
});

export const Completion = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('text_completion'),
    created: Type.Integer(),
    model: Type.String({ description: 'the adapter id used, or the base model name' }),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer({ description: 'prompt index * n + choice' }),
        text: Type.String(),
        finish_reason: FinishReason,
        logprobs: Type.Null(),
      }),
    ),
    usage: Usage,
  },
  { title: 'Completion' },
);
export type Completion = Static<typeof Completion>;

/** One server-sent event of a streamed completion (documentation; the stream is not serialized by schema). */
export const CompletionChunk = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({
      index: Type.Integer(),
      text: Type.String(),
      finish_reason: Type.Union([FinishReason, Type.Null()]),
      logprobs: Type.Null(),
    }),
  ),
  usage: Type.Optional(Type.Union([Usage, Type.Null()])),
}, {
  description: 'One `data:` event of a streamed completion; the stream ends with `data: [DONE]`. The status is sent before the first ' +
    'event, so a stream cut short (REQUEST_DEADLINE_MS, the shutdown drain, a failed batch) stays HTTP 200 and ends with one error event ' +
    'instead, `data: {"error":{"code","message"}}` (ErrorResponse, e.g. HT_ERR_DEADLINE_EXCEEDED), then `data: [DONE]`.',
});
export type CompletionChunk = Static<typeof CompletionChunk>;
