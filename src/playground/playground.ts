/**
 * The playground page: an editable table of examples, a kind, an optional API key and a box of queries; every
 * change (debounced) creates the adapter (POST /v1/adapters) and answers the queries with it (POST
 * /v1/completions, model = the adapter id, temperature 0), through the public API alone. The curl and `openai`
 * snippets are built from the same request bodies, so they show exactly what the page sends.
 *
 * Served under `/playground/` with the modules it imports (src/routes/playground.ts names each file). No
 * innerHTML anywhere: every text from the user or the API goes in through textContent or value.
 */
import { adapterRows, kindLabel, type Adapter } from './metadata.js';
import { curlSnippet, nodeSnippet, type Example, type Requests } from './snippets.js';

interface ModelList {
  data: { id: string; summary?: { adapter_kinds?: string[]; default_adapter_kind?: string } }[];
}
interface Completion {
  choices: { index: number; text: string }[];
}
const DEBOUNCE_MS = 400;

/** An answer from the API that is not 2xx, with the catalogue's `{"error": {"code", "message"}}` when it sent one. */
class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const table = byId<HTMLTableElement>('examples');
const rows = table.tBodies[0]!;
const kindSelect = byId<HTMLSelectElement>('kind');
const refineSelect = byId<HTMLSelectElement>('refine-steps');
const fitHint = byId<HTMLParagraphElement>('fit-hint');
const keyInput = byId<HTMLInputElement>('api-key');
const queriesBox = byId<HTMLTextAreaElement>('queries');
const answersList = byId<HTMLOListElement>('answers');
const adapterList = byId<HTMLDListElement>('adapter');
const statusLine = byId<HTMLParagraphElement>('status');
const errorBox = byId<HTMLDivElement>('error');
const curlCode = byId<HTMLElement>('curl-code');
const nodeCode = byId<HTMLElement>('node-code');
const copyStatus = byId<HTMLParagraphElement>('copy-status');

// ---- the examples table ---------------------------------------------------------------------------------------

type Column = 'input' | 'output';
let nextRowId = 0;

function cellInputs(tr: HTMLTableRowElement): Record<Column, HTMLInputElement> {
  const [input, output] = tr.querySelectorAll('input');
  return { input: input!, output: output! };
}

function cell(tr: HTMLTableRowElement, column: Column): void {
  const td = document.createElement('td');
  const label = document.createElement('label');
  const input = document.createElement('input');
  input.id = `example-${nextRowId}-${column}`;
  input.type = 'text';
  input.spellcheck = false;
  input.dataset.column = column;
  label.htmlFor = input.id;
  label.className = 'visually-hidden';
  td.append(label, input);
  tr.append(td);
}

function addRow(): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.append(document.createElement('td'));
  cell(tr, 'input');
  cell(tr, 'output');
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = 'Remove';
  remove.className = 'remove';
  const td = document.createElement('td');
  td.append(remove);
  tr.append(td);
  nextRowId++;
  rows.append(tr);
  renumber();
  return tr;
}

/** Row numbers and the labels that carry them ("Example 2 input"), after any row is added or removed. */
function renumber(): void {
  [...rows.rows].forEach((tr, i) => {
    tr.cells[0]!.textContent = String(i + 1);
    for (const input of tr.querySelectorAll('input')) input.labels![0]!.textContent = `Example ${i + 1} ${input.dataset.column}`;
    tr.querySelector('button')!.setAttribute('aria-label', `Remove example ${i + 1}`);
  });
  const first = rows.rows[0];
  if (first) {
    cellInputs(first).input.placeholder = 'e.g. Ada Lovelace';
    cellInputs(first).output.placeholder = 'e.g. A.L.';
  }
}

function removeRow(tr: HTMLTableRowElement): void {
  // Keyboard users keep their place: focus moves to the neighbouring row's button, or to "Add example".
  const neighbour = (tr.nextElementSibling ?? tr.previousElementSibling) as HTMLTableRowElement | null;
  tr.remove();
  renumber();
  (neighbour?.querySelector('button') ?? byId('add-row')).focus();
  changed();
}

/** The examples the page sends: rows with both cells filled, in table order. */
function examples(): Example[] {
  return [...rows.rows]
    .map((tr) => cellInputs(tr))
    .filter(({ input, output }) => input.value !== '' && output.value !== '')
    .map(({ input, output }) => ({ input: input.value, output: output.value }));
}

/** Clipboard text from a spreadsheet as rows of cells; null for ordinary text (no tab, no line break). */
function spreadsheetRows(text: string): string[][] | null {
  if (!/[\t\n\r]/.test(text)) return null;
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop(); // a copied range ends with a line break
  return lines.map((line) => line.split('\t'));
}

/**
 * Writes pasted rows into the table from row `start` down, adding rows as needed. With two or more columns a row
 * is one example: the last cell is the output, the cells before it are joined with " | " into the input (how the
 * API expects a multi-cell row). A single column fills the column pasted into.
 */
function pasteRows(start: number, column: Column, pasted: string[][]): void {
  const oneColumn = pasted.every((cells) => cells.length === 1);
  pasted.forEach((cells, i) => {
    const tr = rows.rows[start + i] ?? addRow();
    const target = cellInputs(tr);
    if (oneColumn) {
      target[column].value = cells[0]!;
    } else {
      target.input.value = cells.length > 1 ? cells.slice(0, -1).join(' | ') : cells[0]!;
      target.output.value = cells.length > 1 ? cells.at(-1)! : '';
    }
  });
}

rows.addEventListener('paste', (event) => {
  const input = event.target;
  const pasted = spreadsheetRows(event.clipboardData?.getData('text/plain') ?? '');
  if (!pasted || !(input instanceof HTMLInputElement)) return;
  event.preventDefault();
  const tr = input.closest('tr')!;
  pasteRows(tr.sectionRowIndex, input.dataset.column as Column, pasted);
  changed();
});

rows.addEventListener('input', changed);
rows.addEventListener('click', (event) => {
  const button = (event.target as Element).closest('button.remove');
  if (button) removeRow(button.closest('tr')!);
});
// Enter moves down the column, as in a spreadsheet, adding a row at the end.
rows.addEventListener('keydown', (event) => {
  const input = event.target;
  if (event.key !== 'Enter' || event.isComposing || !(input instanceof HTMLInputElement)) return;
  event.preventDefault();
  const tr = input.closest('tr')!;
  const below = (tr.nextElementSibling as HTMLTableRowElement | null) ?? addRow();
  cellInputs(below)[input.dataset.column as Column].focus();
});
byId('add-row').addEventListener('click', () => {
  cellInputs(addRow()).input.focus();
});

// ---- requests -------------------------------------------------------------------------------------------------

function requests(): Requests {
  const kind = kindSelect.value;
  const steps = Number(refineSelect.value); // "" (off) is 0
  return {
    adapter: { examples: examples(), ...(kind ? { kind } : {}), ...(steps > 0 ? { refine: { steps } } : {}) },
    completion: { prompt: queriesBox.value.split(/\r?\n/).filter((q) => q !== ''), temperature: 0 },
  };
}

async function api<T>(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  // Read from the field on every request and kept nowhere else: no storage, no cookie, no global.
  if (keyInput.value) headers.authorization = `Bearer ${keyInput.value}`;
  const res = await fetch(path, { method, headers, signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    throw typeof error?.code === 'string' && typeof error.message === 'string'
      ? new ApiError(res.status, error.code, error.message)
      : new ApiError(res.status, `HTTP ${res.status}`, text.slice(0, 200) || res.statusText);
  }
  return parsed as T;
}

// ---- what the page shows --------------------------------------------------------------------------------------

function showError(error: unknown): void {
  errorBox.replaceChildren();
  if (error === null) {
    errorBox.hidden = true;
    return;
  }
  if (error instanceof ApiError) {
    const code = document.createElement('code');
    code.textContent = error.code;
    errorBox.append(code, ` (${error.status}): ${error.message}`);
    if (error.code === 'HT_ERR_UNAUTHORIZED') errorBox.append('. Enter the API key above.');
  } else {
    errorBox.append(`The service did not answer: ${error instanceof Error ? error.message : typeof error === 'string' ? error : 'no reason given'}`);
  }
  errorBox.hidden = false;
}

function showAdapter(adapter: Adapter | null): void {
  adapterList.replaceChildren();
  fitHint.hidden = !adapter?.fit;
  if (!adapter) return;
  for (const { name, value, id } of adapterRows(adapter)) {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = name;
    dd.textContent = value;
    if (id) dd.id = id;
    adapterList.append(dt, dd);
  }
}

function showAnswers(prompts: string[], texts: string[]): void {
  answersList.replaceChildren(
    ...prompts.map((prompt, i) => {
      const li = document.createElement('li');
      const query = document.createElement('span');
      const answer = document.createElement('span');
      query.className = 'query';
      answer.className = 'answer';
      query.textContent = `${prompt} → `;
      answer.textContent = texts[i] ?? '';
      li.append(query, answer);
      return li;
    }),
  );
}

// ---- snippets -------------------------------------------------------------------------------------------------

function showSnippets(req: Requests): void {
  const withKey = keyInput.value !== '';
  curlCode.textContent = curlSnippet(req, location.origin, withKey);
  nodeCode.textContent = nodeSnippet(req, location.origin, withKey);
}

for (const button of document.querySelectorAll<HTMLButtonElement>('button.copy')) {
  // The copy reports its outcome in copyStatus and never rejects: the listener has nothing to wait for.
  button.addEventListener('click', () => void copyFrom(button));
}

async function copyFrom(button: HTMLButtonElement): Promise<void> {
  const code = byId(button.dataset.copy!);
  const what = button.getAttribute('aria-label')!.replace(/^Copy /, ''); // "the curl commands"
  try {
    await navigator.clipboard.writeText(code.textContent ?? '');
    copyStatus.textContent = `Copied ${what}.`;
  } catch {
    // The clipboard API needs a secure context (https or localhost): select the text for a manual copy instead.
    getSelection()?.selectAllChildren(code);
    copyStatus.textContent = 'The browser refused the clipboard: the text is selected, copy it with Ctrl+C (⌘C).';
  }
}

// ---- the live loop --------------------------------------------------------------------------------------------

let timer: ReturnType<typeof setTimeout> | undefined;
let inFlight: AbortController | null = null;
let kindsLoaded = false;

/** Fills the kind selector with the kinds the base model serves, its default selected. */
async function loadKinds(signal: AbortSignal): Promise<void> {
  const list = await api<ModelList>('GET', '/v1/models', undefined, signal);
  const summary = list.data[0]?.summary;
  const kinds = summary?.adapter_kinds ?? [];
  kindSelect.replaceChildren(
    ...kinds.map((kind) => new Option(kindLabel(kind), kind, false, kind === summary?.default_adapter_kind)),
  );
  kindsLoaded = true;
}

async function refresh(): Promise<void> {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const { signal } = controller;
  // Until this round ends, the answers shown are for the previous inputs (dimmed; screen readers wait).
  answersList.setAttribute('aria-busy', 'true');
  try {
    if (!kindsLoaded) {
      statusLine.textContent = 'Reading the model…';
      await loadKinds(signal);
      showSnippets(requests());
    }
    const req = requests();
    if (!req.adapter.examples.length) {
      showAdapter(null);
      showAnswers([], []);
      showError(null);
      statusLine.textContent = 'Add an example with both an input and an output.';
      return;
    }
    statusLine.textContent = req.adapter.refine ? `Generating the adapter and refining it (${req.adapter.refine.steps} steps)…` : 'Generating the adapter…';
    const adapter = await api<Adapter>('POST', '/v1/adapters', req.adapter, signal);
    showAdapter(adapter);
    showError(null);
    if (!req.completion.prompt.length) {
      showAnswers([], []);
      statusLine.textContent = 'Type a query to see its answer.';
      return;
    }
    statusLine.textContent = 'Answering…';
    const completion = await api<Completion>('POST', '/v1/completions', { model: adapter.id, ...req.completion }, signal);
    showAnswers(req.completion.prompt, completion.choices.sort((a, b) => a.index - b.index).map((c) => c.text));
    statusLine.textContent = '';
  } catch (error) {
    if (signal.aborted) return; // a newer change took over
    showAdapter(null);
    showAnswers([], []);
    showError(error);
    statusLine.textContent = '';
  } finally {
    if (!signal.aborted) answersList.setAttribute('aria-busy', 'false');
  }
}

/** Any edit: the snippets follow at once, the requests once typing pauses. */
function changed(): void {
  showSnippets(requests());
  clearTimeout(timer);
  timer = setTimeout(() => void refresh(), DEBOUNCE_MS);
}

queriesBox.addEventListener('input', changed);
kindSelect.addEventListener('change', changed);
refineSelect.addEventListener('change', changed);
keyInput.addEventListener('input', changed);

for (let i = 0; i < 3; i++) addRow();
changed();
