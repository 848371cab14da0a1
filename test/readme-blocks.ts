/**
 * The README's code blocks as executable examples: which ones run, what output each one shows, and how
 * to run one. A block in a runnable language runs unless an HTML comment `<!-- not-run: reason -->` is
 * the line before its fence, so a block added later is checked by default. A block's expected output is
 * its `# → …` lines (shell) or `// → …` lines (JavaScript, TypeScript), in order.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

type Runner = 'shell' | 'js' | 'ts';

const RUNNERS: Record<string, Runner> = {
  sh: 'shell', bash: 'shell', shell: 'shell',
  js: 'js', javascript: 'js', mjs: 'js',
  ts: 'ts', typescript: 'ts', mts: 'ts',
};

const OUTPUT_PREFIX: Record<Runner, RegExp> = { shell: /^\s*# →(?: (.*))?$/, js: /^\s*\/\/ →(?: (.*))?$/, ts: /^\s*\/\/ →(?: (.*))?$/ };

export interface CodeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** The `## ` heading the block is under ('' before the first one). */
  section: string;
  /** The fence's language tag as written ('' when none). */
  lang: string;
  /** How it runs, or null for a language that is not run (output, config, JSON). */
  runner: Runner | null;
  /** The reason given in `<!-- not-run: … -->`, or null. */
  notRun: string | null;
  code: string;
  /** What the block shows as its output, one entry per line. */
  expected: string[];
}

export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)$/.exec(lines[i]!);
    if (heading) section = heading[1]!.trim();
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i === lines.length) throw new Error(`README line ${start + 1}: the code block is never closed`);
    const lang = fence[1]!.toLowerCase();
    const runner = RUNNERS[lang] ?? null;
    const marker = start > 0 ? /^<!--\s*not-run:\s*(.*?)\s*-->$/.exec(lines[start - 1]!.trim()) : null;
    if (marker && !marker[1]) throw new Error(`README line ${start}: a not-run marker needs a reason`);
    const prefix = runner ? OUTPUT_PREFIX[runner] : null;
    const expected = prefix ? body.flatMap((l) => { const m = prefix.exec(l); return m ? [m[1] ?? ''] : []; }) : [];
    blocks.push({ line: start + 1, section, lang, runner, notRun: marker ? marker[1]! : null, code: body.join('\n') + '\n', expected });
  }
  return blocks;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a block as a reader would paste it: shell with bash (errexit and pipefail, so a failing curl or jq
 * fails the block); JavaScript and TypeScript as an ES module file, because the examples use top-level
 * await and bare imports. The file sits in a temp folder whose node_modules links to `root`'s, so
 * `import OpenAI from 'openai'` resolves as in a project that installed it.
 */
export async function runBlock(block: CodeBlock, opts: { root: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  if (!block.runner) throw new Error(`README line ${block.line}: a ${block.lang || 'plain'} block is not runnable`);
  if (block.runner === 'shell') return run('bash', ['-e', '-o', 'pipefail', '-c', block.code], opts.root, opts);
  const dir = mkdtempSync(path.join(tmpdir(), 'readme-example-'));
  try {
    symlinkSync(path.join(opts.root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const file = path.join(dir, block.runner === 'ts' ? 'example.mts' : 'example.mjs');
    writeFileSync(file, block.code);
    const args = block.runner === 'ts' ? ['--import', 'tsx', file] : [file];
    return await run(process.execPath, args, dir, opts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], cwd: string, opts: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The lines a block printed, as the README writes them (no trailing empty line). */
export function outputLines(stdout: string): string[] {
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
