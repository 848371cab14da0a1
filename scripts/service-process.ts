/** Runs the service as a real process (what a container or a replica is): start, wait for /readyz, SIGTERM. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

export interface ServiceProcess {
  url: string;
  proc: ChildProcess;
  /** stdout and stderr so far (the JSON log lines). */
  output(): string;
  /** Settles when the process exits, however it exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit code (null and the signal name if it was killed). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `command args` with PORT and HOST set, then polls /readyz until 200.
 * Fails with the process output when it exits early or is not ready within `readyTimeoutMs`.
 */
export async function startService(
  command: string,
  args: string[],
  opts: SpawnOptions & { env: NodeJS.ProcessEnv; readyTimeoutMs?: number },
): Promise<ServiceProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(command, args, { ...opts, env: { ...opts.env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = (once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>).then(([code, signal]) => ({ code, signal }));
  const service: ServiceProcess = {
    url,
    proc,
    output: () => out,
    exited,
    async stop(timeoutMs = 30_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the service exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${out}`);
    const status = await fetch(`${url}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return service;
    if (Date.now() > deadline) {
      await service.stop(5000);
      throw new Error(`the service was not ready within ${opts.readyTimeoutMs ?? 60_000} ms (last /readyz: ${status}):\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** POST JSON, returning status and parsed body. */
export async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
