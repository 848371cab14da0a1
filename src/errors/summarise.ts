/**
 * A short rendering of a value a client sent, for error messages. JSON.stringify is recursive and
 * unbounded: a body nested 5,000 deep overflows the stack and a megabyte array costs a megabyte. This
 * walks at most `maxDepth` levels, stops once `maxChars` are written, and never throws.
 */

/** Levels of nesting shown; deeper arrays and objects read `[…]` and `{…}`. */
const SUMMARY_DEPTH = 3;
/** Characters of rendering; longer ones end with `…`. */
const SUMMARY_CHARS = 200;

class Full extends Error {}

export function summarise(v: unknown, maxDepth = SUMMARY_DEPTH, maxChars = SUMMARY_CHARS): string {
  let out = '';
  const put = (s: string): void => {
    out += s;
    if (out.length > maxChars) throw new Full();
  };
  const walk = (x: unknown, depth: number): void => {
    if (x === null || typeof x === 'boolean' || typeof x === 'number') return put(String(x));
    if (typeof x === 'string') return put(JSON.stringify(x.length > maxChars ? x.slice(0, maxChars) : x));
    if (typeof x !== 'object') return put(typeof x === 'bigint' ? `${x}n` : `<${typeof x}>`);
    if (ArrayBuffer.isView(x)) return put(`<${x.byteLength} bytes>`);
    const isArray = Array.isArray(x);
    if (depth >= maxDepth) return put(isArray ? '[…]' : '{…}');
    put(isArray ? '[' : '{');
    let first = true;
    if (isArray) {
      for (let i = 0; i < x.length; i++) {
        if (!first) put(',');
        first = false;
        walk(x[i], depth + 1);
      }
    } else {
      for (const k in x) {
        if (!Object.hasOwn(x, k)) continue;
        if (!first) put(',');
        first = false;
        put(`${JSON.stringify(k.length > maxChars ? k.slice(0, maxChars) : k)}:`);
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
    }
    put(isArray ? ']' : '}');
  };
  try {
    walk(v, 0);
    return out;
  } catch (e) {
    if (e instanceof Full) return `${out.slice(0, maxChars)}…`;
    return '(a value that cannot be shown)';
  }
}
