/**
 * Request body parsers whose refusals are catalogue errors: JSON unless a route's schema `consumes` other
 * types (the adapter import takes raw bytes), and a prototype key refused by name rather than as bad JSON.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HtError } from './domain-error.js';
import { acceptedMediaTypes, unsupportedMediaType } from './media-type.js';

type Done = (err: Error | null, body?: unknown) => void;

/** Longest parameter path named in a refusal; the key may sit 100,000 levels deep. */
const PATH_CHARS = 120;

interface Node {
  value: object;
  parent: Node | null;
  key: string;
}

function pathOf(node: Node | null): string {
  const parts: string[] = [];
  let length = 0;
  for (let n = node; n?.parent && length <= PATH_CHARS; n = n.parent) {
    const part = /^(0|[1-9]\d*)$/.test(n.key) && Array.isArray(n.parent.value) ? `[${n.key}]` : `.${n.key}`;
    parts.push(part);
    length += part.length;
  }
  const path = parts.reverse().join('');
  return length > PATH_CHARS ? `…${path.slice(-PATH_CHARS)}` : path;
}

/**
 * The first key that secure-json-parse (fastify's JSON parser) refuses: an own `__proto__`, or a
 * `constructor` holding `prototype`. Breadth first without recursion, so any depth is safe.
 */
function forbiddenKey(root: unknown): { path: string; key: '__proto__' | 'constructor' } | undefined {
  if (root === null || typeof root !== 'object') return undefined;
  let level: Node[] = [{ value: root, parent: null, key: '' }];
  while (level.length) {
    const next: Node[] = [];
    for (const node of level) {
      const v = node.value as Record<string, unknown>;
      if (Object.hasOwn(v, '__proto__')) return { path: pathOf(node), key: '__proto__' };
      const ctor = Object.hasOwn(v, 'constructor') ? v.constructor : undefined;
      if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return { path: pathOf(node), key: 'constructor' };
      for (const key in v) {
        const child = v[key];
        if (child !== null && typeof child === 'object') next.push({ value: child, parent: node, key });
      }
    }
    level = next;
  }
  return undefined;
}

function forbiddenKeyError(found: { path: string; key: '__proto__' | 'constructor' }): HtError {
  const what = found.key === '__proto__'
    ? 'the key "__proto__" is not allowed (it would set an object\'s prototype)'
    : 'the key "constructor" holding "prototype" is not allowed (it could reach an object\'s prototype)';
  return new HtError('HT_ERR_VALIDATION', `body${found.path}: ${what}; rename or remove it`);
}

export function installBodyParsers(app: FastifyInstance): void {
  const secureJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req: FastifyRequest, body: string, done: Done) => {
    if (!acceptedMediaTypes(req).includes('application/json')) return done(unsupportedMediaType(req));
    // fastify's type for a body parser admits a promise, but the default one answers through the callback and returns nothing.
    void secureJson(req, body, (err: Error | null, value?: unknown) => {
      if (!err) return done(null, value);
      // The default parser says "not valid JSON" for a prototype key too; name the key when that is the reason.
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return done(err);
      }
      const found = forbiddenKey(parsed);
      done(found ? forbiddenKeyError(found) : err);
    });
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (req: FastifyRequest, body: Buffer, done: Done) => {
    if (!acceptedMediaTypes(req).includes('application/octet-stream')) return done(unsupportedMediaType(req));
    done(null, body);
  });
}
