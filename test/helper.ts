/** Builds apps on the tiny fixture bundle with a temp adapter store; tests use inject, not a port. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import type { Env } from '../src/config/schema.js';
import type { AdapterKindName } from '../src/inference/manifest.js';

export const FIXTURE = fileURLToPath(new URL('./fixtures/tiny', import.meta.url));
/** The shipped model (models/default), trained by training/train-default.sh. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../models/default', import.meta.url));

export interface Golden {
  cases: {
    name: string;
    input: string;
    adapter: null | { kind: AdapterKindName; examples: { input: string; output: string }[] };
    max_new_tokens: number;
    token_ids: number[];
    text: string;
  }[];
}

export function tempDir(prefix = 'hypert5-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** `workerEntry`: the inference worker's entry module (test/fakes/faults.ts's FAULTY_WORKER injects faults). */
export async function makeApp(overrides: Partial<Env> = {}, opts: { waitReady?: boolean; workerEntry?: URL } = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, {
    MODEL_DIR: FIXTURE,
    ADAPTER_STORE_DIR: overrides.ADAPTER_STORE_DIR ?? tempDir(),
    INTRA_OP_THREADS: 1,
    WORKERS: 1, // one worker, so batching tests see every request in the same decode loop
    ...overrides,
  });
  const app = await buildApp({ config, workerEntry: opts.workerEntry });
  await app.ready();
  if (opts.waitReady !== false) await app.engine.scheduler.whenReady();
  return app;
}

export const BASE = 'hypert5-tiny-random';
