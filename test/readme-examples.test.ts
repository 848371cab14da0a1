/**
 * The README's examples run as written against the real service on the shipped model (models/default),
 * with PORT set to its port, and print exactly the output the README shows. A changed answer, a broken
 * command or a new unchecked block fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { ServiceProcess } from '../scripts/service-process.js';
import { DEFAULT_MODEL, removeDir, tempDir } from './helper.js';
import { codeBlocks, outputLines, runBlock } from './readme-blocks.js';
import { startServer } from './server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BLOCKS = codeBlocks(readFileSync(new URL('../README.md', import.meta.url), 'utf8'));
const RUNNABLE = BLOCKS.filter((b) => b.runner && !b.notRun);

describe('README code blocks: which run and what they show', () => {
  const sample = [
    '## One',
    '```sh',
    'echo hi',
    '# → hi',
    '```',
    '<!-- not-run: starts a server -->',
    '```bash',
    'npm start',
    '```',
    '## Two',
    '```js',
    'console.log(1);',
    '// → 1',
    '// →',
    '```',
    '```json',
    '{"a": 1}',
    '```',
  ].join('\n');

  it('runs a block by default, skips one marked not-run, and reads the → lines as its output', () => {
    assert.deepEqual(
      codeBlocks(sample).map(({ line, section, runner, notRun, expected }) => ({ line, section, runner, notRun, expected })),
      [
        { line: 2, section: 'One', runner: 'shell', notRun: null, expected: ['hi'] },
        { line: 7, section: 'One', runner: 'shell', notRun: 'starts a server', expected: [] },
        { line: 11, section: 'Two', runner: 'js', notRun: null, expected: ['1', ''] },
        { line: 16, section: 'Two', runner: null, notRun: null, expected: [] },
      ],
    );
  });

  it('refuses a not-run marker without a reason and an unclosed block', () => {
    assert.throws(() => codeBlocks('<!-- not-run: -->\n```sh\nx\n```'), /needs a reason/);
    assert.throws(() => codeBlocks('```sh\nx\n'), /never closed/);
  });

  it('finds the curl and openai client examples of "Using it", each with output to check', () => {
    const using = RUNNABLE.filter((b) => b.section === 'Using it');
    assert.deepEqual(using.map((b) => b.runner), ['shell', 'js']);
    for (const b of using) assert.ok(b.expected.length > 0, `README line ${b.line} shows no output`);
  });
});

describe('README examples against the started service', () => {
  let service: ServiceProcess;
  let store: string;
  before(async () => {
    store = tempDir();
    service = await startServer({ MODEL_DIR: DEFAULT_MODEL, ADAPTER_STORE_DIR: store, WORKERS: '1' });
  });
  after(async () => {
    await service?.stop();
    removeDir(store);
  });

  for (const block of RUNNABLE) {
    it(`README line ${block.line} (${block.section}, ${block.lang})`, async () => {
      const env = { ...process.env, PORT: new URL(service.url).port };
      const result = await runBlock(block, { root: ROOT, env, timeoutMs: 60_000 });
      assert.equal(result.code, 0, `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
      assert.deepEqual(outputLines(result.stdout), block.expected, result.stderr);
    });
  }
});
