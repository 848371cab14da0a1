/**
 * The bench's Python children, run asynchronously: the load check samples /proc on a timer, which a
 * synchronous child (execFileSync) would block for minutes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Runs a command to completion with its output on this process's; rejects on a non-zero exit. */
export async function run(command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`${command} ${args.slice(0, 2).join(' ')} exited with ${code ?? signal}`);
}

/** A line-protocol child (bench/pyloop.py): one JSON command per line in, one JSON answer per line out. */
export interface LineChild {
  ask<T>(command: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

export async function startLineChild(command: string, args: string[], cwd: string): Promise<LineChild> {
  const child = spawn(command, args, { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = once(child, 'exit');
  const next = async <T>(): Promise<T> => {
    const line = await Promise.race([lines.next(), exited.then(([code]) => { throw new Error(`${args[0]} exited with ${String(code)}`); })]);
    if (line.done) throw new Error(`${args[0]} closed its output`);
    const answer = JSON.parse(line.value) as T & { error?: string };
    if (answer.error) throw new Error(`${args[0]}: ${answer.error}`);
    return answer;
  };
  await next<{ ready: true }>();
  return {
    async ask<T>(cmd: Record<string, unknown>): Promise<T> {
      child.stdin.write(JSON.stringify(cmd) + '\n');
      return next<T>();
    },
    async close() {
      if (child.exitCode !== null) return;
      child.stdin.end(JSON.stringify({ cmd: 'exit' }) + '\n');
      await exited;
    },
  };
}
