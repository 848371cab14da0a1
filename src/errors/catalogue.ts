/**
 * The one error catalogue: stable codes, their HTTP status and a one-line meaning.
 * Clients branch on `code`; the message is for people and names the parameter, the limit and the value.
 */
export const CATALOGUE = {
  HT_ERR_MALFORMED_JSON: { status: 400, meaning: 'the request body is not valid JSON' },
  HT_ERR_BAD_REQUEST: { status: 400, meaning: 'the request is malformed: Node\'s HTTP parser refused its request line or a header (the connection is then closed), or its path has an invalid percent-encoding' },
  HT_ERR_UNAUTHORIZED: { status: 401, meaning: 'missing or unknown API key (send Authorization: Bearer <key>)' },
  HT_ERR_NOT_FOUND: { status: 404, meaning: 'no such route' },
  HT_ERR_ADAPTER_NOT_FOUND: { status: 404, meaning: 'no adapter with this id' },
  HT_ERR_METHOD_NOT_ALLOWED: { status: 405, meaning: 'the route exists but not with this method (see the Allow header)' },
  HT_ERR_MODEL_NOT_FOUND: { status: 404, meaning: 'model is neither the base model nor a known adapter id' },
  HT_ERR_REQUEST_TIMEOUT: { status: 408, meaning: 'the request did not arrive within REQUEST_TIMEOUT_MS (or its headers within Node\'s headersTimeout); the connection is closed' },
  HT_ERR_BODY_TOO_LARGE: { status: 413, meaning: 'the request body exceeds the size limit' },
  HT_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'unsupported Content-Type' },
  HT_ERR_HEADERS_TOO_LARGE: { status: 431, meaning: 'the request line and headers exceed Node\'s header size limit (--max-http-header-size, 16 KiB by default); the connection is closed' },
  HT_ERR_VALIDATION: { status: 422, meaning: 'a parameter has the wrong type, format or range' },
  HT_ERR_INPUT_TOO_LONG: { status: 422, meaning: 'a prompt has more tokens than the encoder accepts' },
  HT_ERR_EXAMPLES_TOO_LONG: { status: 422, meaning: 'the serialized few-shot examples have more tokens than the hypermodel accepts' },
  HT_ERR_TOO_MANY_EXAMPLES: { status: 422, meaning: 'more few-shot examples than allowed' },
  HT_ERR_EXAMPLE_TOO_LONG: { status: 422, meaning: 'an example input or output has more characters than allowed' },
  HT_ERR_LIMIT_EXCEEDED: { status: 422, meaning: 'a numeric parameter exceeds its configured limit' },
  HT_ERR_INCOMPATIBLE_PARAMETERS: { status: 422, meaning: 'parameters that cannot be used together' },
  HT_ERR_UNSUPPORTED_PARAMETER: { status: 422, meaning: 'an OpenAI parameter this server does not implement, sent with a value other than its neutral one (the message names the value accepted)' },
  HT_ERR_REFINE_UNAVAILABLE: { status: 422, meaning: 'refinement was asked for but the model bundle has no training-step graph for this adapter kind (manifest field refine)' },
  HT_ERR_UNKNOWN_ADAPTER_KIND: { status: 422, meaning: 'the model has no adapter of this kind' },
  HT_ERR_INVALID_SAFETENSORS: { status: 422, meaning: 'the uploaded file is not a valid safetensors file' },
  HT_ERR_ADAPTER_MISMATCH: { status: 422, meaning: 'uploaded tensors do not match the manifest (names, shapes, dtypes, number of tensors, header size), or a mask holds values other than 0 and 1' },
  HT_ERR_ADAPTER_NOT_FINITE: { status: 422, meaning: 'an uploaded tensor holds NaN or infinity' },
  HT_ERR_ADAPTER_OUT_OF_RANGE: { status: 422, meaning: 'an uploaded tensor holds a value whose magnitude exceeds the manifest\'s max_abs for that tensor' },
  HT_ERR_NON_FINITE_LOGITS: { status: 422, meaning: 'the adapter named by model drove the logits to NaN or infinity (its parameters are out of range for this model); generation stopped at that token' },
  HT_ERR_QUEUE_FULL: { status: 429, meaning: 'too many requests waiting; retry after Retry-After seconds' },
  HT_ERR_OVERLOADED: { status: 429, meaning: 'the work ahead and this request would not finish within REQUEST_DEADLINE_MS at the measured throughput; retry after Retry-After seconds' },
  HT_ERR_RATE_LIMITED: { status: 429, meaning: 'this API key (or address) sent more requests than RATE_LIMIT_PER_MIN, or this address sent more wrong API keys than AUTH_FAILURES_PER_MIN; retry after Retry-After seconds' },
  HT_ERR_CLIENT_CLOSED: { status: 499, meaning: 'the client closed the connection before the answer (logged only; no client sees it)' },
  HT_ERR_INTERNAL: { status: 500, meaning: 'internal error (details are in the server log)' },
  HT_ERR_INFERENCE_FAILED: { status: 500, meaning: 'ONNX Runtime failed on the batch holding this request; only that batch failed and the server keeps serving' },
  HT_ERR_NOT_READY: { status: 503, meaning: 'models are still loading' },
  HT_ERR_SHUTTING_DOWN: { status: 503, meaning: 'the server is shutting down' },
  HT_ERR_DEADLINE_EXCEEDED: { status: 503, meaning: 'the request did not finish within REQUEST_DEADLINE_MS (queueing included); retry after Retry-After seconds' },
  HT_ERR_WORKER_RESTARTING: { status: 503, meaning: 'the inference worker holding this request died and is being replaced; retry after Retry-After seconds' },
  HT_ERR_STORE_UNHEALTHY: { status: 503, meaning: '/readyz only: the last adapter write failed for lack of space, and no write has succeeded nor has the space come back since' },
  HT_ERR_STORE_FULL: { status: 507, meaning: 'the adapter store (ADAPTER_STORE_DIR) has no space for this adapter (ENOSPC or EDQUOT); retry after Retry-After seconds' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof CATALOGUE;
export const ERROR_CODES = Object.keys(CATALOGUE) as ErrorCode[];
