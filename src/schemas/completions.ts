/**
 * Completion bodies, in the OpenAI completions format. Named schemas (`…Schema`, with an `$id`) are OpenAPI
 * components; the export without the suffix is the reference routes use, typed as the schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AdapterKind, ref } from './common.js';
import { Example, Refine } from './adapters.js';

const PROMPT_DOC = 'A spreadsheet row with several cells is sent as one string with the cells joined by `" | "`.';

/** The OpenAI fields this server does not implement: accepted only with the value that changes nothing (openai-fields.ts). */
const UNSUPPORTED = 'not supported by this server: any other value is refused (HT_ERR_UNSUPPORTED_PARAMETER)';

export const CompletionBodySchema = Type.Object(
  {
    model: Type.String({
      minLength: 1,
      description: 'an adapter id (`ad-…`), or the base model name for the frozen T5 alone (see GET /v1/models)',
    }),
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
      description: `one prompt or an array of prompts; each gets \`n\` choices. Token-id prompts (arrays of integers) are refused: send text. ${PROMPT_DOC}`,
    }),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'most tokens to generate per choice (default: manifest generation.max_new_tokens)' })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, description: '0 = greedy; default 1 (as OpenAI); a tiny positive value samples almost greedily, never on NaN' })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'nucleus sampling mass (default 1; 0 keeps only the most likely token, as in OpenAI)' })),
    seed: Type.Optional(Type.Integer({ description: 'sampling seed; the same seed gives the same text' })),
    stop: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 })), Type.Null()], {
        description: 'stop sequences: generation ends before the first occurrence (finish_reason "stop"); an empty string is refused',
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
    user: Type.Optional(Type.String({ description: 'accepted and ignored (OpenAI compatibility)' })),
    logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 5 }), Type.Null()], {
      description: 'log probabilities: each choice gets `logprobs` (CompletionLogprobs) with every generated token\'s log probability and ' +
        'the N most likely tokens at each position (plus the chosen one). Greedy and sampled decoding; with `stream: true` or beam search it is refused ' +
        '(HT_ERR_INCOMPATIBLE_PARAMETERS). null or absent: choices have `logprobs: null`',
    })),
    echo: Type.Optional(Type.Boolean({ description: `return the prompt before the completion: only false, ${UNSUPPORTED}` })),
    suffix: Type.Optional(Type.Union([Type.String(), Type.Null()], {
      description: `text after the completion (insertion): only null or "", ${UNSUPPORTED}`,
    })),
    best_of: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description: `candidates generated server-side, the best n returned: only null or the value of \`n\` (default 1), ${UNSUPPORTED}`,
    })),
    presence_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()], {
      description: `penalty on tokens already generated: only 0 or null, ${UNSUPPORTED}`,
    })),
    frequency_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()], {
      description: `penalty growing with each repetition of a token: only 0 or null, ${UNSUPPORTED}`,
    })),
    logit_bias: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Number({ minimum: -100, maximum: 100 })), Type.Null()], {
      description: `bias added to the logits of token ids (OpenAI's tokenizer ids, not this model's): only null or {}, ${UNSUPPORTED}`,
    })),
    examples: Type.Optional(Type.Array(Example, {
      minItems: 1,
      description: 'extension: inline few-shot examples; the adapter is fetched or created, then used (`model` must be the base model)',
    })),
    adapter_kind: Type.Optional(AdapterKind),
    refine: Type.Optional(Refine),
    num_beams: Type.Optional(Type.Integer({ minimum: 1, description: 'extension: beam search width (needs temperature 0 or absent)' })),
  },
  { $id: 'CompletionBody', title: 'CompletionBody', additionalProperties: false },
);
export type CompletionBody = Static<typeof CompletionBodySchema>;
export const CompletionBody = ref(CompletionBodySchema);

const FinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length')]);

export const UsageSchema = Type.Object(
  {
    prompt_tokens: Type.Integer({ minimum: 0 }),
    completion_tokens: Type.Integer({ minimum: 0 }),
    total_tokens: Type.Integer({ minimum: 0 }),
  },
  { $id: 'Usage', title: 'Usage', description: 'tokens read (all prompts) and generated (all choices)' },
);
const Usage = ref(UsageSchema);

export const CompletionLogprobsSchema = Type.Object(
  {
    tokens: Type.Array(Type.String(), { description: 'the generated tokens as text; joined, they are the choice\'s text' }),
    token_logprobs: Type.Array(Type.Number({ maximum: 0 }), {
      description: 'log probability of each token under the model (log-softmax of its logits, before temperature and top_p)',
    }),
    top_logprobs: Type.Array(Type.Record(Type.String(), Type.Number({ maximum: 0 })), {
      description: 'at each position, the `logprobs` most likely tokens and the chosen one, token text -> log probability',
    }),
    text_offset: Type.Array(Type.Integer({ minimum: 0 }), { description: 'where each token starts in the choice\'s text (characters; the prompt is not echoed)' }),
  },
  { $id: 'CompletionLogprobs', title: 'CompletionLogprobs', description: 'OpenAI\'s legacy completions log probabilities, one entry per generated token' },
);

export const CompletionChoiceSchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: 'prompt index * n + choice' }),
    text: Type.String(),
    finish_reason: FinishReason,
    logprobs: Type.Union([ref(CompletionLogprobsSchema), Type.Null()], { description: 'null unless the request set `logprobs`' }),
  },
  { $id: 'CompletionChoice', title: 'CompletionChoice' },
);

export const CompletionSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('text_completion'),
    created: Type.Integer(),
    model: Type.String({ description: 'the adapter id used, or the base model name' }),
    choices: Type.Array(ref(CompletionChoiceSchema)),
    usage: Usage,
  },
  { $id: 'Completion', title: 'Completion' },
);
export type Completion = Static<typeof CompletionSchema>;
export const Completion = ref(CompletionSchema);

/** One server-sent event of a streamed completion (documentation; the stream is not serialized by schema). */
export const CompletionChunkSchema = Type.Object({
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
  $id: 'CompletionChunk',
  title: 'CompletionChunk',
  description: 'One `data:` event of a streamed completion; the stream ends with `data: [DONE]`. The status is sent before the first ' +
    'event, so a stream cut short (REQUEST_DEADLINE_MS, the shutdown drain, a failed batch) stays HTTP 200 and ends with one error event ' +
    'instead, `data: {"error":{"code","message"}}` (ErrorResponse, e.g. HT_ERR_DEADLINE_EXCEEDED), then `data: [DONE]`.',
});
export type CompletionChunk = Static<typeof CompletionChunkSchema>;
export const CompletionChunk = ref(CompletionChunkSchema);
