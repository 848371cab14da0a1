/** The OpenAPI document the routes produce (no model needed): what openapi.yaml must equal. */
import { buildApp } from './app.js';
import { loadConfig } from './config/index.js';

export async function renderOpenapi(): Promise<string> {
  const app = await buildApp({ config: loadConfig({}), openapiOnly: true });
  await app.ready();
  const yaml = app.swagger({ yaml: true });
  await app.close();
  return yaml;
}
