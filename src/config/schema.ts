import { Type, type Static } from '@sinclair/typebox';
import os from 'node:os';

const cores = Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);

const Int = (min: number, def: number, description: string) =>
  Type.Integer({ minimum: min, default: def, description });

/**
 * Every setting: environment variable name -> schema with default and unit.
 * The keys are the variable names, so an error names the variable directly.
 */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'TCP port' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'listen address' }),
  MODEL_DIR: Type.String({ minLength: 1, default: 'models/default', description: 'bundle folder (models/README.md)' }),
  ADAPTER_STORE_DIR: Type.String({ minLength: 1, default: './data/adapters', description: 'persistent adapter store folder' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  BODY_LIMIT_BYTES: Int(1024, 1024 * 1024, 'largest JSON request body, bytes'),
  IMPORT_LIMIT_BYTES: Int(1024, 256 * 1024 * 1024, 'largest safetensors upload to /v1/adapters/import, bytes'),
  MAX_EXAMPLES: Int(1, 64, 'most few-shot examples per adapter (also capped by manifest hyper_input.max_examples)'),
  MAX_EXAMPLE_CHARS: Int(1, 4096, 'most characters in one example input or output'),
  MAX_PROMPTS: Int(1, 32, 'most prompts in one completion request'),
  MAX_TOKENS: Int(1, 512, 'largest max_tokens a request may ask for'),
  MAX_N: Int(1, 8, 'largest n (choices per prompt)'),
  MAX_BEAMS: Int(1, 8, 'largest num_beams'),
  MAX_STOP: Int(0, 4, 'most stop sequences'),
  MAX_REFINE_STEPS: Int(1, 200, 'most Adam steps one adapter refinement (`refine.steps`) may ask for'),
  QUEUE_SIZE: Int(1, 256, 'most generation/hypermodel jobs waiting or running; beyond it HT_ERR_QUEUE_FULL'),
  MAX_BATCH_ROWS: Int(1, 16, 'most decoder rows (sequences, beams) in one decode step'),
  // One single-threaded worker per core measured fastest on 2 vCPUs (bench/README.md): 2 intra-op
  // threads make a batch-1 decode slower and take the core the HTTP thread needs.
  WORKERS: Int(1, cores, 'inference worker threads (default: the machine cores); each holds its own copy of the weights'),
  INTRA_OP_THREADS: Int(1, 1, 'ONNX Runtime intra-op threads per worker'),
  ADAPTER_CACHE_BYTES: Int(0, 256 * 1024 * 1024, 'in-memory adapter LRU bound, bytes'),
  // Shared adapter store for replicas (deploy/README.md); empty REDIS_URL = local store only.
  REDIS_URL: Type.String({ default: '', description: 'redis://[:password@]host:port[/db] shared by the replicas; empty = no Redis' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'hypert5:', description: 'prefix of every Redis key and channel this service uses' }),
  REDIS_TIMEOUT_MS: Int(1, 2000, 'Redis connect and command timeout, ms; past it the replica serves from its local store'),
  RETRY_AFTER_S: Int(1, 1, 'Retry-After value on retryable refusals (queue full, overloaded, not ready, deadline, store full), seconds'),
  REQUEST_TIMEOUT_MS: Int(0, 120_000, 'whole-request timeout, ms (0 = none)'),
  // Reliability and access control (docs/operations.md).
  REQUEST_DEADLINE_MS: Int(0, 60_000, 'per-request deadline for generation, queueing included, ms (0 = none); beyond it HT_ERR_DEADLINE_EXCEEDED and the batch slots are freed'),
  // Admission plans with the throughput measured from the work done; this is the guess until then (docs/operations.md, "Backpressure").
  ADMISSION_PRIOR_TOKENS_PER_S: Int(1, 500, 'throughput assumed before any is measured, token-steps (decoder rows x tokens, weighted by position) per second'),
  SHUTDOWN_DRAIN_MS: Int(0, 25_000, 'on SIGTERM, how long in-flight requests may finish before they are cancelled with HT_ERR_SHUTTING_DOWN, ms'),
  API_KEYS: Type.String({ default: '', description: 'comma-separated API keys; empty (and no API_KEYS_FILE) = no authentication' }),
  API_KEYS_FILE: Type.String({ default: '', description: 'file with one API key per line (# comments); read once at boot' }),
  ADAPTER_SCOPE: Type.Union([Type.Literal('shared'), Type.Literal('key')], {
    default: 'shared',
    description: 'shared: every key sees every adapter; key: an adapter is visible only to the API key that created it',
  }),
  RATE_LIMIT_PER_MIN: Int(0, 0, 'requests per minute per API key (per client address without keys) on guarded routes (all but the open ones); 0 = no limit'),
  AUTH_FAILURES_PER_MIN: Int(0, 20, 'wrong API keys per minute from one client address before it gets HT_ERR_RATE_LIMITED until the minute ends; 0 = no limit'),
  TRUST_PROXY: Type.String({ default: '', description: 'proxies whose X-Forwarded-For names the client address (for the two limits above): comma-separated addresses, CIDR ranges or loopback/linklocal/uniquelocal, or a hop count; empty = none' }),
  CORS_ORIGINS: Type.String({ default: '', description: 'comma-separated allowed browser origins (* = any); empty = CORS off' }),
});

export type Env = Static<typeof EnvSchema>;
