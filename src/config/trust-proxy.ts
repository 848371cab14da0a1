/**
 * TRUST_PROXY: the proxies in front of the service whose X-Forwarded-For names the client. The client's address
 * counts wrong API keys (AUTH_FAILURES_PER_MIN) and keyless requests (RATE_LIMIT_PER_MIN); behind a proxy that is
 * not trusted every client shares the proxy's address, so one client's wrong keys would lock out all of them.
 * Only trusted proxies are believed: a header from anyone else cannot pick an address to evade the limits.
 * `fastifyTrustProxy` turns it into fastify's `trustProxy` option (proxy-addr semantics).
 */
import { isIP } from 'node:net';

/** false: the connection's address is the client; a number: that many proxies; a list: these addresses or ranges. */
export type TrustProxy = false | number | string[];

const PRESETS = ['loopback', 'linklocal', 'uniquelocal'];

function validEntry(entry: string): boolean {
  if (PRESETS.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Throws, naming the entry, when the value is neither empty, a hop count, nor a list of addresses, ranges and presets. */
export function parseTrustProxy(value: string): TrustProxy {
  const v = value.trim();
  if (v === '') return false;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops < 1) throw new Error(`TRUST_PROXY=${JSON.stringify(value)}: a hop count must be at least 1 (empty = no proxy is trusted)`);
    return hops;
  }
  const entries = v.split(',').map((e) => e.trim());
  const bad = entries.find((e) => !validEntry(e));
  if (bad !== undefined) {
    throw new Error(`TRUST_PROXY=${JSON.stringify(value)}: ${JSON.stringify(bad)} is not an IP address, a CIDR range (10.0.0.0/8) or one of ${PRESETS.join(', ')}; or give a hop count`);
  }
  return entries;
}

/** fastify's `trustProxy`: its types take no hop count, so a count becomes proxy-addr's own rule for one. */
export function fastifyTrustProxy(value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  const trust = parseTrustProxy(value);
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}
