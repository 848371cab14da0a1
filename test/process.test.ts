/**
 * The server as a real process: graceful shutdown on SIGTERM, kill -9 never loses an answered adapter nor
 * serves a torn file, and a corrupt or missing model file stops start-up with a message naming it.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { readSafetensors } from '../src/adapters/safetensors.js';
import { BASE, FIXTURE, removeDir, tempDir } from './helper.js';
import { runToExit, startServer } from './server-process.js';

const json = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('graceful shutdown (SIGTERM)', () => {
  it('stops accepting, finishes in-flight requests, flushes the store, exits 0', async () => {
    const dir = tempDir();
    try {
      const s = await startServer({ ADAPTER_STORE_DIR: dir, MAX_TOKENS: '512', SHUTDOWN_DRAIN_MS: '20000' });
      const long = json(`${s.url}/v1/completions`, { model: BASE, prompt: 'x', n: 2, max_tokens: 512, temperature: 0 });
      const adapter = json(`${s.url}/v1/adapters`, { examples: [{ input: 'drain', output: 'me' }] });
      await sleep(300);
      s.proc.kill('SIGTERM');
      await sleep(100);
      // New work is refused with a clear answer (or the listener is already gone).
      const late = await json(`${s.url}/v1/completions`, { model: BASE, prompt: 'late', max_tokens: 2 }).then(
        async (r) => ({ status: r.status, code: ((await r.json()) as { error?: { code: string } }).error?.code }),
        () => ({ status: 0, code: 'ECONNREFUSED' }),
      );
      assert.ok(late.status === 0 || (late.status === 503 && late.code === 'HT_ERR_SHUTTING_DOWN'), JSON.stringify(late));
      const done = await long;
      assert.equal(done.status, 200);
      const body = (await done.json()) as { usage: { completion_tokens: number } };
      assert.equal(body.usage.completion_tokens, 1024);
      const a = await adapter;
      assert.equal(a.status, 201);
      const { id } = (await a.json()) as { id: string };
      assert.deepEqual(await s.exited, { code: 0, signal: null }, s.output());
      assert.match(s.output(), /"outcome":"drained"/);
      const store = await DiskAdapterStore.open(dir, { error: () => {} });
      assert.ok(await store.get(id), 'the adapter whose creation was answered is on disk');
    } finally {
      removeDir(dir);
    }
  });

  it('past SHUTDOWN_DRAIN_MS what is left is answered 503 and the process still exits 0', async () => {
    const dir = tempDir();
    try {
      const s = await startServer({ ADAPTER_STORE_DIR: dir, MAX_TOKENS: '512', SHUTDOWN_DRAIN_MS: '200', REQUEST_DEADLINE_MS: '0' });
      const long = json(`${s.url}/v1/completions`, { model: BASE, prompt: 'x', n: 8, max_tokens: 512, temperature: 0 });
      await sleep(200);
      s.proc.kill('SIGTERM');
      const r = await long;
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'HT_ERR_SHUTTING_DOWN');
      assert.deepEqual(await s.exited, { code: 0, signal: null }, s.output());
      assert.match(s.output(), /"outcome":"deadline"/);
    } finally {
      removeDir(dir);
    }
  });
});

describe('crash safety (kill -9)', () => {
  it('every adapter whose creation was answered survives, and nothing torn is served', async () => {
    const dir = tempDir();
    const answered = new Map<string, number>();
    let attempted = 0;
    try {
      for (let round = 0; round < 3; round++) {
        const s = await startServer({ ADAPTER_STORE_DIR: dir });
        // Everything answered before this kill is still there after the restart.
        for (const id of answered.keys()) {
          const r = await fetch(`${s.url}/v1/adapters/${id}/parameters`);
          assert.equal(r.status, 200, `round ${round}: ${id} lost`);
          readSafetensors(Buffer.from(await r.arrayBuffer()));
        }
        let stop = false;
        const writer = async (w: number) => {
          for (let i = 0; !stop; i++) {
            attempted++;
            const r = await json(`${s.url}/v1/adapters`, { examples: [{ input: `r${round} w${w} i${i}`, output: String(i) }], kind: i % 2 ? 'lora' : 'prefix' }).catch(() => null);
            if (r && (r.status === 201 || r.status === 200)) answered.set(((await r.json()) as { id: string }).id, round);
          }
        };
        const writers = [0, 1, 2, 3].map(writer);
        await sleep(400 + Math.floor(Math.random() * 800));
        s.proc.kill('SIGKILL');
        stop = true;
        await Promise.all(writers);
        assert.equal((await s.exited).signal, 'SIGKILL');
      }
      assert.ok(answered.size > 10, `only ${answered.size} adapters were answered`);
      // Read back through the store itself: every answered id verifies its checksum; nothing was quarantined.
      const store = await DiskAdapterStore.open(dir, { error: (o) => assert.fail(JSON.stringify(o)) });
      for (const id of answered.keys()) assert.ok(await store.get(id), id);
      assert.deepEqual(readdirSync(path.join(dir, 'quarantine')), []);
      assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'temp files of interrupted writes are cleared at open');
      console.log(`# kill -9: 3 kills, ${attempted} creations attempted, ${answered.size} answered, 0 lost`);
    } finally {
      removeDir(dir);
    }
  });
});

describe('model files at boot', () => {
  it('a missing model file stops start-up with a message naming it', async () => {
    const dir = tempDir();
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      unlinkSync(path.join(dir, 'decoder.onnx'));
      const r = await runToExit({ MODEL_DIR: dir });
      assert.equal(r.code, 1);
      assert.match(r.output, new RegExp(`start-up failed: ${path.join(dir, 'decoder.onnx')}: missing`));
    } finally {
      removeDir(dir);
    }
  });

  it('a corrupt model file stops start-up with a message naming it', async () => {
    const dir = tempDir();
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      const f = path.join(dir, 'encoder.onnx');
      const b = readFileSync(f);
      b[Math.floor(b.length / 2)]! ^= 0xff;
      writeFileSync(f, b);
      const r = await runToExit({ MODEL_DIR: dir });
      assert.equal(r.code, 1);
      assert.match(r.output, new RegExp(`start-up failed: ${f}: sha256 [0-9a-f]+ does not match`));
    } finally {
      removeDir(dir);
    }
  });
});
