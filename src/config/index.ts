import { Value } from '@sinclair/typebox/value';
import { EnvSchema, type Env } from './schema.js';
import { parseTrustProxy } from './trust-proxy.js';

export type Config = Readonly<Env>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Coerces strings from the environment to the schema's types, applies defaults, validates, freezes. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Env> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  Object.assign(raw, overrides);
  const withDefaults = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw));
  const first = Value.Errors(EnvSchema, withDefaults).First();
  if (first) {
    const name = first.path.replace(/^\//, '');
    throw new ConfigError(`invalid configuration: ${name}=${JSON.stringify(raw[name])}: ${first.message}`);
  }
  const config = Value.Clean(EnvSchema, withDefaults) as Env;
  try {
    parseTrustProxy(config.TRUST_PROXY);
  } catch (e) {
    throw new ConfigError(`invalid configuration: ${(e as Error).message}`);
  }
  return Object.freeze(config);
}
