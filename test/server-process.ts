/** The real server (src/server.ts) as a child process on the tiny fixture, for signals, kill -9 and boot failures. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startService, type ServiceProcess } from '../scripts/service-process.js';
import { FIXTURE } from './helper.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = ['--import', 'tsx', 'src/server.ts'];

function serverEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, MODEL_DIR: FIXTURE, HOST: '127.0.0.1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'info', ...env };
}

/** Spawns the server and resolves once /readyz answers 200 (rejects with its output if it exits first). */
export function startServer(env: Record<string, string>): Promise<ServiceProcess> {
  return startService(process.execPath, SERVER, { cwd: ROOT, env: serverEnv(env), readyTimeoutMs: 30_000 });
}

/** For the load and soak scripts: SIGTERM must end the server with exit code 0, a failed claim otherwise. */
export async function stopExpectingCleanExit(server: ServiceProcess): Promise<void> {
  const { code } = await server.stop();
  if (code !== 0) {
    console.error(`server exit code ${code} after SIGTERM`);
    process.exitCode = 1;
  }
}

/** Runs the server to its exit (boot failures). */
export async function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, SERVER, { cwd: ROOT, env: serverEnv({ PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output: out };
}
