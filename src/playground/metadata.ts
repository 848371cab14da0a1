/**
 * The adapter's metadata as the page lists it: name → text pairs, read generically so that a field the API adds
 * later (or leaves out) never breaks the page. Pure functions of the POST /v1/adapters answer.
 */

export interface Adapter {
  id: string;
  kind: string;
  model: string;
  num_examples: number;
  created_at: number;
  cached: boolean;
  parent?: string | null;
  refine?: { steps: number; learning_rate: number; augment: string; loss_first: number; loss_last: number; ms: number } | null;
  /** How well the adapter reproduces its examples; each field may be missing or null. */
  fit?: { demos_exact?: number | null; loo_exact?: number | null; mean_logprob?: number | null } | null;
}

/** One entry of the list: `id` marks the entries a test or a person looks for. */
export interface Row {
  name: string;
  value: string;
  id?: string;
}

const KIND_LABELS: Record<string, string> = { lora: 'LoRA', prefix: 'Prefix' };
export const kindLabel = (kind: string): string => KIND_LABELS[kind] ?? kind;

/** Three significant digits, a real minus sign (−0.12), and no exponent for the small losses refinement reaches. */
function num(x: number): string {
  const text = Math.abs(x) >= 1e-4 || x === 0 ? String(Number(x.toPrecision(3))) : x.toExponential(1);
  return text.replace(/^-/, '−');
}

/**
 * A share of the examples (the API's 0 to 1) as the count it stands for, "2/3", which reads better than 67%; as a
 * percentage when it is not near a whole count of `n` (a share over another number of cases).
 */
function share(x: number, n: number): string {
  const count = x * n;
  return n > 0 && Math.abs(count - Math.round(count)) < 0.02 ? `${Math.round(count)}/${n}` : `${Math.round(x * 100)}%`;
}

/** The fit report in words, e.g. "fits its examples 3/3 · predicts a held-out example 2/3 · mean log-prob −0.12". */
export function fitSummary(fit: NonNullable<Adapter['fit']>, n: number): string {
  const parts: string[] = [];
  if (typeof fit.demos_exact === 'number') parts.push(`fits its examples ${share(fit.demos_exact, n)}`);
  if (typeof fit.loo_exact === 'number') parts.push(`predicts a held-out example ${share(fit.loo_exact, n)}`);
  else if ('loo_exact' in fit) parts.push('no held-out check (it needs two examples)');
  if (typeof fit.mean_logprob === 'number') parts.push(`mean log-prob ${num(fit.mean_logprob)}`);
  return parts.join(' · ');
}

export function adapterRows(adapter: Adapter): Row[] {
  const rows: Row[] = [
    { name: 'id', value: adapter.id, id: 'adapter-id' },
    { name: 'kind', value: kindLabel(adapter.kind) },
    { name: 'model', value: adapter.model },
    { name: 'examples', value: String(adapter.num_examples) },
  ];
  if (adapter.refine) {
    const { steps, learning_rate, augment, loss_first, loss_last, ms } = adapter.refine;
    rows.push(
      { name: 'parent', value: adapter.parent ?? '(none)', id: 'adapter-parent' },
      {
        name: 'refined',
        value: `${steps} steps in ${ms} ms · loss ${num(loss_first)} → ${num(loss_last)} · learning rate ${num(learning_rate)}, augment ${augment}`,
        id: 'adapter-refine',
      },
    );
  }
  if (adapter.fit) rows.push({ name: 'fit', value: fitSummary(adapter.fit, adapter.num_examples), id: 'adapter-fit' });
  rows.push(
    { name: 'created', value: new Date(adapter.created_at * 1000).toISOString() },
    { name: 'cached', value: adapter.cached ? 'yes (these examples were seen before)' : 'no (generated now)' },
  );
  return rows;
}
