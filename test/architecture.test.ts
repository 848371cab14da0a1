/**
 * The layering the folder names promise: no cycle between the folders of src/, and the domain (everything
 * below the HTTP edge) neither imports the HTTP layer nor compares HTTP statuses; errors/handler.ts alone
 * maps error codes to statuses.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
/** The HTTP edge (and the app files at the root of src/); every other folder is domain. */
const EDGE = ['.', 'errors', 'plugins', 'routes', 'schemas'];

interface Module { folder: string; file: string; text: string; imports: string[] }

/** Every .ts module under `root` (the browser playground aside), with the relative imports it names. */
function modules(root: string): Module[] {
  const out: Module[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'playground') walk(p);
      } else if (name.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        const rel = path.relative(root, p).split(path.sep);
        out.push({
          folder: rel.length > 1 ? rel[0]! : '.',
          file: rel.join('/'),
          text,
          imports: [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!),
        });
      }
    }
  };
  walk(root);
  return out;
}

const folderOf = (root: string, m: Module, spec: string): string => {
  const rel = path.relative(root, path.resolve(root, path.dirname(m.file), spec)).split(path.sep);
  return rel.length > 1 ? rel[0]! : '.';
};

/** A cycle between folders (as a path a -> b -> … -> a), or null. */
function folderCycle(root: string): string[] | null {
  const edges = new Map<string, Set<string>>();
  for (const m of modules(root)) {
    for (const spec of m.imports.filter((s) => s.startsWith('.'))) {
      const to = folderOf(root, m, spec);
      if (to !== m.folder) edges.set(m.folder, (edges.get(m.folder) ?? new Set()).add(to));
    }
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): string[] | null => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of edges.get(f) ?? []) {
      if (state.get(to) === 'open') return [...stack.slice(stack.indexOf(to)), to];
      const found = state.has(to) ? null : visit(to);
      if (found) return found;
    }
    stack.pop();
    state.set(f, 'done');
    return null;
  };
  for (const f of edges.keys()) {
    const found = state.has(f) ? null : visit(f);
    if (found) return found;
  }
  return null;
}

/** Domain modules that reach the HTTP layer or read an HTTP status, each with the reason. */
function httpInDomain(root: string): string[] {
  const found: string[] = [];
  for (const m of modules(root).filter((x) => !EDGE.includes(x.folder))) {
    for (const spec of m.imports) {
      if (spec === 'fastify' || spec.startsWith('@fastify/')) found.push(`${m.file} imports ${spec}`);
      if (spec.startsWith('.') && ['plugins', 'routes'].includes(folderOf(root, m, spec))) found.push(`${m.file} imports ${spec}`);
      if (spec.endsWith('errors/handler.js')) found.push(`${m.file} imports the HTTP mapping ${spec}`);
    }
    // A status compared in code (comments aside): `error.status < 500`, `CATALOGUE[code].status`.
    const code = m.text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    if (/\.status(Code)?\s*[<>=!]=?=?\s*[1-5]\d\d\b|CATALOGUE\s*\[/.test(code)) found.push(`${m.file} reads an HTTP status`);
  }
  return found;
}

/** The folders that may name an HTTP status: the error map and the route handlers. */
const STATUS_FOLDERS = ['errors', 'routes'];

/** Modules outside errors/ and routes/ that name an HTTP status in code (comments aside), each with the reason. */
function statusesOutsideEdge(root: string): string[] {
  const found: string[] = [];
  for (const m of modules(root).filter((x) => !STATUS_FOLDERS.includes(x.folder))) {
    const code = m.text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    if (/\berrors\(\s*(\.\.\.)?[1-5]\d\d\b/.test(code)) found.push(`${m.file} lists error responses by status`);
    if (/\b(code|status)\(\s*[1-5]\d\d\b/.test(code)) found.push(`${m.file} sets a status`);
    if (/\.status(Code)?\s*[<>=!]=?=?\s*[1-5]\d\d\b/.test(code)) found.push(`${m.file} compares a status`);
    if (/\b(status|statusCode)\s*:\s*[1-5]\d\d\b/.test(code)) found.push(`${m.file} builds a status`);
  }
  return found;
}

describe('architecture', () => {
  it('no import cycle between the folders of src/', () => {
    assert.equal(folderCycle(SRC)?.join(' -> ') ?? null, null);
  });

  it('the domain knows error codes, never HTTP statuses', () => {
    assert.deepEqual(httpInDomain(SRC), []);
  });

  it('outside errors/ and routes/ no module names an HTTP status', () => {
    assert.deepEqual(statusesOutsideEdge(SRC), []);
  });
});
