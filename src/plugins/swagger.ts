/** OpenAPI from the route schemas (@fastify/swagger), served at /openapi.yaml, docs at /docs. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { BODY_ERRORS, errors, PATH_ERRORS } from '../schemas/common.js';
import { NAMED_SCHEMAS } from '../schemas/named.js';

const OPENAPI_INFO = {
  title: 'HyperT5 serving API',
  version: '1.0.0',
  description:
    'A hypermodel reads few-shot input->output examples and, in one forward pass, generates adapter parameters ' +
    '(LoRA or key/value prefixes) for a frozen T5; completions follow the OpenAI completions API. ' +
    'Errors are `{"error": {"code", "message"}}` with stable codes (HT_ERR_…). ' +
    'Multi-cell spreadsheet rows are sent as one input string with the cells joined by `" | "`. ' +
    'Beyond what each operation lists: a path that exists with another method answers 405 with `Allow` ' +
    '(HT_ERR_METHOD_NOT_ALLOWED), an unknown path 404 (HT_ERR_NOT_FOUND, or 401 first where API keys are set), and a ' +
    'request Node\'s HTTP parser refuses (a control character in a header, a malformed request line) 400, 408 or 431 ' +
    'in the same error shape, after which the connection is closed.',
};

/** Methods whose body fastify parses (so a bad one is refused before the handler), whatever the route does with it. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The refusals fastify itself answers before a route's handler runs, for the routes they can reach. */
function frameworkRefusals(url: string, methods: readonly string[]): number[] {
  const out: number[] = [];
  // The router: an invalid percent-encoding (400), a parameter over maxParamLength (422).
  if (url.includes(':')) out.push(...PATH_ERRORS);
  if (methods.some((m) => BODY_METHODS.has(m))) out.push(...BODY_ERRORS);
  return out;
}

export default fp(
  async (app) => {
    for (const schema of NAMED_SCHEMAS) app.addSchema(schema);
    app.addHook('onRoute', (route) => {
      const schema = route.schema as { hide?: boolean; response?: Record<number, unknown> } | undefined;
      if (!schema || schema.hide) return;
      schema.response = { ...errors(...frameworkRefusals(route.url, ([] as string[]).concat(route.method))), ...schema.response };
    });
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: OPENAPI_INFO,
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'an API key; required on every route but the open ones (/, /playground/*, /healthz, /readyz, /metrics, /openapi.yaml, /docs) when API_KEYS or API_KEYS_FILE is set' },
          },
        },
        tags: [
          { name: 'adapters', description: 'generated and imported adapters' },
          { name: 'completions', description: 'OpenAI-compatible completions' },
          { name: 'models', description: 'OpenAI-compatible model list' },
          { name: 'health', description: 'liveness, readiness, metrics' },
        ],
      },
      refResolver: {
        buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.yaml', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('application/yaml').send(app.swagger({ yaml: true })),
    );
  },
  { name: 'swagger' },
);
