/**
 * The playground page at `/`, its files under `/playground/`. Served as built (npm run build:playground), then used in a real browser: headless
 * Chromium from the system (Debian's `chromium` package; playwright-core downloads nothing) against the service on
 * the shipped model with an API key, as a person would, keyboard only. The browser half is skipped, saying why,
 * where no Chromium is installed. Its screenshot goes to test-artifacts/playground.png (a CI artifact).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { ServiceProcess } from '../scripts/service-process.js';
import { adapterRows, fitSummary, type Adapter } from '../src/playground/metadata.js';
import { DEFAULT_MODEL, makeApp, removeDir, tempDir } from './helper.js';
import { outputLines, runBlock } from './readme-blocks.js';
import { startServer } from './server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}playground.png`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const NO_BROWSER = CHROMIUM
  ? false
  : 'no Chromium found (/usr/bin/chromium): install Debian\'s package (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH';
const KEY = 'playground-test-key';
/** Names → initials: the default model gets it right (20 of 20 measured), with both kinds. */
const EXAMPLES = [
  ['Ada Lovelace', 'A.L.'],
  ['Grace Hopper', 'G.H.'],
  ['Alan Turing', 'A.T.'],
] as const;
/**
 * File path → its stem: the one-pass adapter answers the first directory ("var"); refined for 100 steps it
 * answers the stem (measured on models/default, LoRA: one pass "var", 25 and 100 steps "syslog").
 */
const STEMS = [
  ['/etc/hosts.txt', 'hosts'],
  ['/usr/lib/readme.md', 'readme'],
  ['/home/ada/notes.csv', 'notes'],
] as const;
const STEM_QUERY = '/var/log/syslog.gz';
const WAIT = { timeout: 60_000 };

before(() => {
  execFileSync('npm', ['run', '--silent', 'build:playground'], { cwd: ROOT, stdio: 'pipe' });
});

describe('the page as served', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ API_KEYS: KEY });
  });
  after(() => app.close());

  it('answers / without a key, with the script and stylesheet it names under /playground/, under the service CSP', async () => {
    const page = await app.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.headers['content-security-policy'] as string, /script-src 'self'/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => u !== '/docs');
    assert.deepEqual(assets.sort(), ['/playground/playground.css', '/playground/playground.js']);
    // The entry module's imports, too: a browser fetches them without a key as well.
    const script = (await app.inject({ url: '/playground/playground.js' })).body;
    const imports = [...script.matchAll(/from '\.\/([^']+)'/g)].map((m) => `/playground/${m[1]}`);
    assert.deepEqual(imports.sort(), ['/playground/metadata.js', '/playground/snippets.js']);
    for (const url of [...assets, ...imports]) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, url.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, url);
    }
  });

  it('has no inline script, style or event handler (the CSP would refuse them)', async () => {
    const html = (await app.inject({ url: '/' })).body;
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'a <script> without src');
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'an on* attribute');
    assert.doesNotMatch(html, /<style|\sstyle\s*=/i, 'inline style');
  });

  it('refuses an unknown file with the catalogue 404, other methods and paths with 401 (GET under /playground/ only)', async () => {
    for (const asset of ['nope.js', '__proto__', '..%2Fpackage.json', 'index.html', '']) {
      const res = await app.inject({ url: `/playground/${asset}` });
      assert.equal(res.statusCode, 404, asset);
      assert.equal(res.json().error.code, 'HT_ERR_NOT_FOUND');
      assert.match(res.json().error.message, /the files are playground\.js, metadata\.js, snippets\.js, playground\.css$/);
    }
    for (const [method, url] of [['GET', '/playground.js'], ['GET', '/playgroundx/playground.js'], ['GET', '/playground'],
      ['HEAD', '/playground/playground.js'], ['POST', '/playground/playground.js'], ['GET', '/playground/a/playground.js']] as const) {
      assert.equal((await app.inject({ method, url })).statusCode, 401, `${method} ${url}`);
    }
  });

  it('lists refine metadata and the fit report in words', () => {
    const adapter: Adapter = {
      id: 'ad-1', kind: 'lora', model: 'm', num_examples: 3, created_at: 0, cached: false, parent: 'ad-0',
      refine: { steps: 100, learning_rate: 0.001, augment: 'none', loss_first: 0.27409, loss_last: 0.000116, ms: 1975 },
      fit: { demos_exact: 1, loo_exact: 2 / 3, mean_logprob: -0.1234 },
    };
    const rows = Object.fromEntries(adapterRows(adapter).map((r) => [r.name, r.value]));
    assert.equal(rows.parent, 'ad-0');
    assert.equal(rows.refined, '100 steps in 1975 ms · loss 0.274 → 0.000116 · learning rate 0.001, augment none');
    assert.equal(rows.fit, 'fits its examples 3/3 · predicts a held-out example 2/3 · mean log-prob −0.123');
    // A share that is not a whole count of the examples reads as a percentage; a missing held-out check is said.
    assert.equal(fitSummary({ demos_exact: 0.667, loo_exact: 0.5 }, 3), 'fits its examples 2/3 · predicts a held-out example 50%');
    assert.equal(fitSummary({ demos_exact: 1, loo_exact: null, mean_logprob: -2e-5 }, 1), 'fits its examples 1/1 · no held-out check (it needs two examples) · mean log-prob −2.0e-5');
    const plain = adapterRows({ ...adapter, parent: null, refine: null, fit: null }).map((r) => r.name);
    assert.deepEqual(plain, ['id', 'kind', 'model', 'examples', 'created', 'cached']);
  });
});

describe('the playground in headless Chromium, keyboard only, with an API key', { skip: NO_BROWSER }, () => {
  let service: ServiceProcess;
  let store: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Console errors and uncaught exceptions, from every page of the context. */
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];

  // Code that runs in the page is passed as strings: this Node program is typechecked without DOM types.
  const inPage = <T>(p: Page, expression: string): Promise<T> => p.evaluate<T>(expression);
  /** Polls `expression` in the page until it is true (waitForFunction would eval it there, which the CSP refuses). */
  async function until(p: Page, expression: string): Promise<void> {
    const deadline = Date.now() + WAIT.timeout;
    while (!(await inPage<boolean>(p, expression))) {
      if (Date.now() > deadline) assert.fail(`still false after ${WAIT.timeout} ms: ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const watch = (p: Page): Page => {
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    return p;
  };
  /** The id, or else the accessible name, of the focused element. */
  async function focused(p: Page): Promise<string> {
    const el = p.locator(':focus');
    if (!(await el.count())) return '';
    return (await el.getAttribute('id')) || (await el.getAttribute('aria-label')) || (await el.getAttribute('aria-labelledby')) || ((await el.textContent()) ?? '').trim();
  }
  const answers = (p: Page) => p.locator('#answers .answer').allTextContents();
  /** Waits until the answers are for the current inputs (the page's aria-busy) and there are `count` of them. */
  const settled = (p: Page, count: number) =>
    until(p, `document.querySelector('#answers').getAttribute('aria-busy') === 'false' && document.querySelectorAll('#answers .answer').length === ${count}`);
  const adapterId = (p: Page) => p.locator('#adapter-id').textContent();
  const codeOf = (p: Page, id: string) => p.locator(`#${id}`).textContent().then((t) => t ?? '');
  const cells = (p: Page) => p.locator('#examples tbody input').all().then((all) => Promise.all(all.map((c) => c.inputValue())));
  /** A real paste (Ctrl+V) of `text` into the field labelled `label`. */
  async function paste(p: Page, label: string, text: string): Promise<void> {
    await inPage(p, `navigator.clipboard.writeText(${JSON.stringify(text)})`);
    await p.getByLabel(label, { exact: true }).focus();
    await p.keyboard.press('Control+V');
  }
  async function tabTo(p: Page, id: string): Promise<void> {
    for (let i = 0; i < 40; i++) {
      await p.keyboard.press('Tab');
      if ((await focused(p)) === id) return;
    }
    assert.fail(`Tab never reached #${id}`);
  }
  async function open(): Promise<Page> {
    const p = watch(await context.newPage());
    await p.goto(`${service.url}/`);
    return p;
  }

  before(async () => {
    store = tempDir();
    service = await startServer({ MODEL_DIR: DEFAULT_MODEL, ADAPTER_STORE_DIR: store, WORKERS: '1', API_KEYS: KEY });
    browser = await chromium.launch({ executablePath: CHROMIUM as string });
    context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: service.url });
    // Installed by the browser itself before the page's scripts (not an inline script: the CSP does not apply).
    await context.addInitScript(`window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`);
    page = await open();
  });
  after(async () => {
    await browser?.close();
    await service?.stop();
    removeDir(store);
  });

  it('without a key, shows the API\'s 401 in the page, with its catalogue code and message', async () => {
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await error.textContent(), 'HT_ERR_UNAUTHORIZED (401): Authorization: Bearer <API key> is required. Enter the API key above.');
    // The stylesheet came through the CSP: the page's layout applies.
    assert.equal(await inPage(page, 'getComputedStyle(document.body).maxWidth'), '1248px');
  });

  it('Tab visits every control in reading order, each with a visible focus ring', async () => {
    const order: string[] = [];
    const rings: string[] = [];
    for (let i = 0; i < 19; i++) {
      await page.keyboard.press('Tab');
      order.push(await focused(page));
      rings.push(await inPage(page, 'getComputedStyle(document.activeElement).outlineStyle + " " + getComputedStyle(document.activeElement).outlineWidth'));
    }
    const row = (n: number) => [`example-${n}-input`, `example-${n}-output`, `Remove example ${n + 1}`];
    assert.deepEqual(order, [
      'API docs', ...row(0), ...row(1), ...row(2), 'add-row', 'kind', 'refine-steps', 'api-key', 'queries',
      'Copy the curl commands', 'curl-title', 'Copy the Node code', 'node-title',
    ]);
    assert.deepEqual(new Set(rings), new Set(['solid 3px']), `focus rings: ${rings.join(', ')}`);
    assert.deepEqual(await Promise.all(['Example 1 input', 'Example 3 output', 'Kind', 'Refine steps', 'API key', 'One query per line'].map(
      (label) => page.getByLabel(label, { exact: true }).count(),
    )), [1, 1, 1, 1, 1, 1], 'every field has its <label>');
  });

  it('types three examples, the key and a query with the keyboard alone, and shows the right answer', async () => {
    await page.reload();
    await page.keyboard.press('Tab'); // the API docs link
    for (const [input, output] of EXAMPLES) {
      await page.keyboard.press('Tab');
      await page.keyboard.type(input);
      await page.keyboard.press('Tab');
      await page.keyboard.type(output);
      await page.keyboard.press('Tab'); // its Remove button
    }
    await tabTo(page, 'api-key');
    await page.keyboard.type(KEY);
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'queries');
    await page.keyboard.type('Katherine Johnson');
    await settled(page, 1);
    assert.deepEqual(await answers(page), ['K.J.']);
    assert.equal(await page.locator('#answers').getAttribute('aria-live'), 'polite');
    assert.match((await adapterId(page)) ?? '', /^ad-[0-9a-f]{32}$/);
    assert.equal(await page.locator('#kind').inputValue(), 'lora');
    assert.equal(await page.locator('#error').isHidden(), true);
    assert.equal(await page.locator('#adapter-refine').count(), 0, 'refinement is off by default');
  });

  it('its curl and openai snippets are exactly its requests: run, they print the same id and answers', async () => {
    // A quote in a query: the shell snippet must still quote it right.
    await page.locator('#queries').press('End');
    await page.keyboard.type("\nMiles O'Brien");
    await settled(page, 2);
    const shown = await answers(page);
    assert.equal(shown[0], 'K.J.');
    const id = await adapterId(page);
    const curl = await codeOf(page, 'curl-code');
    const node = await codeOf(page, 'node-code');
    for (const code of [curl, node]) {
      assert.ok(!code.includes(KEY), 'the key itself never appears in a snippet');
      assert.ok(code.includes(service.url), 'the page\'s own origin');
    }
    const env = { ...process.env, API_KEY: KEY };
    for (const [runner, code] of [['shell', curl], ['js', node]] as const) {
      const result = await runBlock({ line: 0, section: 'playground', lang: runner, runner, notRun: null, code, expected: [] }, { root: ROOT, env, timeoutMs: 60_000 });
      assert.equal(result.code, 0, `${runner} snippet exit ${result.code}:\n${code}\n${result.stderr}`);
      assert.deepEqual(outputLines(result.stdout), [id, ...shown], `${runner} snippet:\n${code}\n${result.stderr}`);
    }
  });

  it('Copy puts a snippet on the clipboard and says so', async () => {
    await page.getByRole('button', { name: 'Copy the curl commands' }).focus();
    await page.keyboard.press('Enter');
    await until(page, `document.querySelector('#copy-status').textContent !== ''`);
    assert.equal(await page.locator('#copy-status').textContent(), 'Copied the curl commands.');
    assert.equal(await inPage(page, 'navigator.clipboard.readText()'), await codeOf(page, 'curl-code'));
  });

  it('refine steps: the refined adapter answers what the one pass gets wrong, with its parent, losses and snippets', async () => {
    const p = await open();
    await p.locator('#api-key').focus();
    await p.keyboard.type(KEY);
    await paste(p, 'Example 1 input', STEMS.map((row) => row.join('\t')).join('\n'));
    await p.locator('#queries').focus();
    await p.keyboard.type(STEM_QUERY);
    await settled(p, 1);
    assert.deepEqual(await answers(p), ['var'], 'the one pass answers the directory');
    const parent = await adapterId(p);
    await p.locator('#refine-steps').focus();
    for (let i = 0; i < 3; i++) await p.keyboard.press('ArrowDown'); // off → 25 → 50 → 100
    assert.equal(await p.locator('#refine-steps').inputValue(), '100');
    await until(p, `document.querySelector('#adapter-id')?.textContent !== ${JSON.stringify(parent)} && !!document.querySelector('#adapter-refine')`);
    await settled(p, 1);
    assert.deepEqual(await answers(p), ['syslog'], 'refined, it answers the stem');
    const id = await adapterId(p);
    assert.match(id ?? '', /^ad-[0-9a-f]{32}$/);
    assert.equal(await p.locator('#adapter-parent').textContent(), parent);
    assert.match((await p.locator('#adapter-refine').textContent()) ?? '', /^100 steps in \d+ ms · loss 0\.\d+ → [0-9.e−-]+ · learning rate [0-9.e−-]+, augment none$/);
    // The fit report, when the API gives one, comes with the hint on when not to trust it.
    const fit = await p.locator('#adapter-fit').count();
    assert.equal(await p.locator('#fit-hint').isVisible(), fit === 1);
    if (fit) assert.match((await p.locator('#adapter-fit').textContent()) ?? '', /^fits its examples \d+\/3/);
    const curl = await codeOf(p, 'curl-code');
    const node = await codeOf(p, 'node-code');
    for (const code of [curl, node]) assert.ok(code.includes('"kind": "lora", "refine": {"steps": 100}}'), code);
    const env = { ...process.env, API_KEY: KEY };
    for (const [runner, code] of [['shell', curl], ['js', node]] as const) {
      const result = await runBlock({ line: 0, section: 'playground', lang: runner, runner, notRun: null, code, expected: [] }, { root: ROOT, env, timeoutMs: 60_000 });
      assert.equal(result.code, 0, `${runner} snippet exit ${result.code}:\n${code}\n${result.stderr}`);
      assert.deepEqual(outputLines(result.stdout), [id, 'syslog'], `${runner} snippet:\n${code}\n${result.stderr}`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.equal(readFileSync(SCREENSHOT).subarray(1, 4).toString(), 'PNG');
    await p.close();
  });

  it('keeps the key in memory only: nothing stored, and gone after a reload', async () => {
    assert.deepEqual(await inPage(page, '[localStorage.length, sessionStorage.length, document.cookie]'), [0, 0, '']);
    const fresh = await open();
    await fresh.locator('#error').waitFor({ state: 'visible', ...WAIT });
    assert.equal(await fresh.locator('#api-key').inputValue(), '');
    assert.match((await fresh.locator('#error').textContent()) ?? '', /HT_ERR_UNAUTHORIZED/);
    await fresh.close();
  });

  it('switching the kind makes a prefix adapter, still answering right', async () => {
    const before = await adapterId(page);
    await page.locator('#kind').focus();
    await page.keyboard.press('ArrowDown'); // lora → prefix
    await until(page, `document.querySelector('#adapter-id')?.textContent !== ${JSON.stringify(before)}`);
    await settled(page, 2);
    assert.equal((await answers(page))[0], 'K.J.');
    assert.equal(await page.locator('#kind').inputValue(), 'prefix');
    assert.match((await page.locator('#adapter').textContent()) ?? '', /kindPrefix/);
    assert.match(await codeOf(page, 'curl-code'), /"kind": "prefix"/);
  });

  it('pasted spreadsheet rows become examples: the last column is the output, the others join with " | "', async () => {
    await paste(page, 'Example 3 input', 'Alan\tTuring\tA.T.\r\nBarbara\tLiskov\tB.L.\r\n');
    assert.deepEqual(await cells(page), ['Ada Lovelace', 'A.L.', 'Grace Hopper', 'G.H.', 'Alan | Turing', 'A.T.', 'Barbara | Liskov', 'B.L.']);
    // One column fills the column pasted into.
    await paste(page, 'Example 3 input', 'Alan Turing\nBarbara Liskov\nDonald Knuth');
    assert.deepEqual(await cells(page), ['Ada Lovelace', 'A.L.', 'Grace Hopper', 'G.H.', 'Alan Turing', 'A.T.', 'Barbara Liskov', 'B.L.', 'Donald Knuth', '']);
    // The incomplete fifth row is left out: four examples.
    await until(page, `/examples4/.test(document.querySelector('#adapter')?.textContent)`);
    await settled(page, 2);
    assert.equal((await answers(page))[0], 'K.J.');
    // Plain text pastes as usual into the one cell.
    await paste(page, 'Example 5 output', 'D.K.');
    assert.equal((await cells(page))[9], 'D.K.');
  });

  it('Enter moves down a column, adding a row; Remove from the keyboard keeps focus in the table', async () => {
    const rowCount = () => page.locator('#examples tbody tr').count();
    await page.getByLabel('Example 5 output', { exact: true }).focus();
    await page.keyboard.press('Enter');
    assert.equal(await rowCount(), 6);
    assert.equal(await focused(page), await page.getByLabel('Example 6 output', { exact: true }).getAttribute('id'));
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'Remove example 6');
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'Remove example 5', 'the last row gone, focus moves up');
    await page.getByRole('button', { name: 'Remove example 2' }).focus();
    await page.keyboard.press('Space');
    assert.equal(await rowCount(), 4);
    assert.equal(await focused(page), 'Remove example 2', 'the row below took its place');
    assert.deepEqual(await page.locator('#examples tbody td:first-child').allTextContents(), ['1', '2', '3', '4']);
  });

  it('shows an API refusal with its code and message: 17 examples for a model that takes 16', async () => {
    await paste(page, 'Example 1 input', Array.from({ length: 17 }, (_, i) => `name ${i}\tN${i}`).join('\n'));
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await error.textContent(), 'HT_ERR_TOO_MANY_EXAMPLES (422): body.examples length is 17; the limit is 16 (manifest hyper_input.max_examples)');
    assert.deepEqual(await answers(page), [], 'no stale answers next to an error');
  });

  it('broke no CSP rule and threw nothing; the console shows only the refused requests', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await inPage(page, 'window.cspViolations'), []);
    const unexpected = consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (401|422)\b/.test(e));
    assert.deepEqual(unexpected, []);
    // The watch is not blind: an inline script, which the CSP refuses, is reported.
    await inPage(page, `document.head.append(Object.assign(document.createElement('script'), { textContent: 'void 0' }))`);
    await until(page, 'window.cspViolations.length > 0');
    assert.deepEqual(await inPage(page, 'window.cspViolations'), ['script-src-elem inline']);
  });
});
