/** What the bench uses of autocannon beyond scripts/autocannon.d.ts: the per-request response hook. */
import 'autocannon';

declare module 'autocannon' {
  interface Request {
    onResponse?: (status: number, body: string) => void;
  }
}
