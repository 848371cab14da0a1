/** npm run openapi: writes openapi.yaml at the repository root from the route schemas. */
import { writeFileSync } from 'node:fs';
import { renderOpenapi } from '../src/openapi.js';

writeFileSync(new URL('../openapi.yaml', import.meta.url), await renderOpenapi());
console.log('wrote openapi.yaml');
