/** The real server (src/server.ts) as a child process, for signals, kill -9 and boot failures. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { FIXTURE } from './helper.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  logs(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A port free right now (the server binds it a moment later; the OS does not hand it out again that fast). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Spawns the server; resolves once it listens and is ready (or rejects with its output if it exits first). */
export async function startServer(env: Record<string, string>, opts: { waitReady?: boolean } = {}): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, MODEL_DIR: FIXTURE, HOST: '127.0.0.1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void exited.then(() => (gone = true));
  const end = Date.now() + 30_000;
  const want = opts.waitReady === false ? (s: number) => s > 0 : (s: number) => s === 200;
  while (!want(await fetch(`${url}/readyz`).then((r) => r.status, () => 0))) {
    if (gone || Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`server did not ${gone ? 'stay up' : 'get ready'}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url, logs: () => out, exited };
}

/** Runs the server to its exit (boot failures). */
export async function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, MODEL_DIR: FIXTURE, HOST: '127.0.0.1', PORT: '0', INTRA_OP_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output: out };
}
