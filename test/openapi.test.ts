/** openapi.yaml (committed) is exactly what the route schemas produce, and it is a complete contract. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { renderOpenapi } from '../src/openapi.js';

it('openapi.yaml matches the routes', async () => {
  const committed = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8');
  assert.equal(committed, await renderOpenapi(), 'openapi.yaml is stale: run `npm run openapi`');
});

interface Media { schema: { $ref?: string; type?: string } }
interface Operation {
  parameters?: { in: string }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
  security?: unknown[];
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

describe('the API contract', () => {
  let app: FastifyInstance;
  let doc: Doc;
  const ops: [string, Operation][] = [];
  before(async () => {
    app = await buildApp({ config: loadConfig({}), openapiOnly: true });
    await app.ready();
    doc = app.swagger() as unknown as Doc;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) ops.push([`${method.toUpperCase()} ${path}`, op]);
    }
  });
  after(() => app.close());

  const ref = (name: string) => `#/components/schemas/${name}`;

  it('names every JSON request and response body as a component schema', () => {
    for (const name of ['CreateAdapterBody', 'Adapter', 'DeletedAdapter', 'Example', 'CompletionBody', 'Completion', 'CompletionChoice',
      'CompletionChunk', 'Usage', 'ModelList', 'Model', 'ModelSummary', 'Health', 'ErrorResponse']) {
      assert.ok(doc.components.schemas[name], `components.schemas.${name} is missing`);
    }
    let bodies = 0;
    for (const [label, op] of ops) {
      const media = [
        ...Object.entries(op.requestBody?.content ?? {}),
        ...Object.values(op.responses).flatMap((r) => Object.entries(r.content ?? {})),
      ];
      for (const [type, m] of media) {
        if (!type.includes('json') && type !== 'text/event-stream') continue;
        bodies++;
        assert.match(m.schema.$ref ?? '', /^#\/components\/schemas\/\w+$/, `${label} ${type}: inline schema ${JSON.stringify(m.schema).slice(0, 120)}`);
      }
    }
    assert.ok(bodies > 40, `only ${bodies} bodies checked`);
  });

  it('documents every error status a route can answer, each with the catalogue error schema', () => {
    const must = (label: string, op: Operation, statuses: string[]) => {
      for (const s of statuses) {
        const r = op.responses[s];
        assert.ok(r, `${label} does not document ${s}`);
        assert.equal(r.content?.['application/json']?.schema.$ref, ref('ErrorResponse'), `${label} ${s}`);
        assert.match(r.description, /HT_ERR_/, `${label} ${s}: the description names the codes`);
      }
    };
    for (const [label, op] of ops) {
      for (const [s, r] of Object.entries(op.responses)) {
        if (Number(s) >= 400) assert.equal(r.content?.['application/json']?.schema.$ref, ref('ErrorResponse'), `${label} ${s}`);
      }
      if (op.security) must(label, op, ['401', '429']);
      if (op.parameters?.some((p) => p.in === 'path')) must(label, op, ['400', '422']);
      if (op.requestBody || label.startsWith('DELETE')) must(label, op, ['400', '413', '415', '422']);
    }
    must('POST /v1/completions', doc.paths['/v1/completions']!.post!, ['404', '429', '503', '507']);
    must('POST /v1/adapters', doc.paths['/v1/adapters']!.post!, ['503', '507']);
    must('GET /v1/models/{id}', doc.paths['/v1/models/{id}']!.get!, ['404']);
    must('GET /readyz', doc.paths['/readyz']!.get!, ['503']);
  });

  it('documents GET /v1/models/{id} as an OpenAI model object', () => {
    const op = doc.paths['/v1/models/{id}']?.get;
    assert.ok(op, 'GET /v1/models/{id} is missing');
    assert.equal(op.responses['200']!.content!['application/json']!.schema.$ref, ref('Model'));
  });
});
