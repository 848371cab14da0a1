/**
 * A real redis-server for the tests: a free port on 127.0.0.1, a temp dir, no persistence; stopped and
 * restarted at will (outage tests). Missing redis-server is an error, not a skip: .ci/run installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { freePort } from '../scripts/service-process.js';
import { removeDir, tempDir } from './helper.js';

export { freePort };

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}

export class RedisServer {
  private proc: ChildProcess | undefined;
  private readonly dir = tempDir('hypert5-redis-');

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      throw new Error(
        'redis-server is not installed, and the shared adapter store tests need a real one: ' +
          '`apt-get install -y redis-server` (Debian; .ci/run does it when it is missing)',
      );
    }
    const server = new RedisServer(await freePort());
    await server.resume();
    return server;
  }

  /** (Re)starts the server on the same port. */
  async resume(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    const deadline = Date.now() + 10_000;
    while (!(await ping(this.port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} on port ${this.port}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${this.port} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server (an outage); the data goes with it, as persistence is off. */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    removeDir(this.dir);
  }
}

/** Polls `check` until it returns true (or the time runs out, then fails with `what`). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
