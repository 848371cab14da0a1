/** OpenAPI from the route schemas (@fastify/swagger), served at /openapi.yaml, docs at /docs. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { frameworkRefusals, UNLISTED_REFUSALS } from '../errors/responses.js';
import { NAMED_SCHEMAS } from '../schemas/named.js';

const OPENAPI_INFO = {
  title: 'HyperT5 serving API',
  version: '1.0.0',
  description:
    'A hypermodel reads few-shot input->output examples and, in one forward pass, generates adapter parameters ' +
    '(LoRA or key/value prefixes) for a frozen T5; completions follow the OpenAI completions API. ' +
    'Errors are `{"error": {"code", "message"}}` with stable codes (HT_ERR_…). ' +
    'Multi-cell spreadsheet rows are sent as one input string with the cells joined by `" | "`. ' +
    UNLISTED_REFUSALS,
};

export default fp(
  async (app) => {
    for (const schema of NAMED_SCHEMAS) app.addSchema(schema);
    app.addHook('onRoute', (route) => {
      const schema = route.schema as { hide?: boolean; response?: Record<number, unknown> } | undefined;
      if (!schema || schema.hide) return;
      schema.response = { ...frameworkRefusals(route.url, ([] as string[]).concat(route.method)), ...schema.response };
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
