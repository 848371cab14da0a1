/**
 * The curl and `openai` snippets: built from the very request bodies the page sends, so running them gives what
 * the page shows (the browser test runs both). Pure functions of the requests and the page's origin.
 */

export interface Example {
  input: string;
  output: string;
}
/** The adapter body's refine object, exactly as sent (only the fields the person set). */
interface Refine {
  steps: number;
}
/** The two request bodies the page sends (the completion's `model` is the adapter id, known only later). */
export interface Requests {
  adapter: { examples: Example[]; kind?: string; refine?: Refine };
  completion: { prompt: string[]; temperature: 0 };
}

/** A shell word in single quotes: `'` becomes `'\''`. */
const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const list = (items: string[]): string => `[${items.map((q) => JSON.stringify(q)).join(', ')}]`;

/** The adapter body as JSON, one example a line (what JSON.stringify gives, laid out to be read). */
function adapterJson(body: Requests['adapter'], indent: string): string {
  const rows = body.examples.map((e) => `\n${indent}  {"input": ${JSON.stringify(e.input)}, "output": ${JSON.stringify(e.output)}}`);
  const kind = body.kind ? `, "kind": ${JSON.stringify(body.kind)}` : '';
  const refine = body.refine ? `, "refine": {${Object.entries(body.refine).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}` : '';
  return `{"examples": [${rows.join(',')}${rows.length ? `\n${indent}` : ''}]${kind}${refine}}`;
}

export function curlSnippet(req: Requests, origin: string, withKey: boolean): string {
  const auth = withKey ? ` \\\n  -H "authorization: Bearer $API_KEY"` : '';
  const post = (path: string) => `curl -s "$BASE${path}" -H 'content-type: application/json'${auth} \\\n  -d `;
  const lines = [`BASE=${origin}`, `ID=$(${post('/v1/adapters')}${shellQuote(adapterJson(req.adapter, '  '))} | jq -r .id)`, 'echo "$ID"'];
  if (req.completion.prompt.length) {
    // '"$ID"' closes the single quotes, splices in the id, and reopens them.
    const { prompt, temperature } = req.completion;
    const body = `{"model": "'"$ID"'", "prompt": ${list(prompt).replaceAll("'", `'\\''`)}, "temperature": ${temperature}}`;
    lines.push(`${post('/v1/completions')}'${body}' | jq -r '.choices[].text'`);
  }
  return lines.join('\n');
}

export function nodeSnippet(req: Requests, origin: string, withKey: boolean): string {
  const lines = [
    "import OpenAI from 'openai';",
    '',
    `const baseURL = '${origin}/v1';`,
    withKey ? 'const apiKey = process.env.API_KEY;' : "const apiKey = 'unused'; // the service has no API keys",
    'const client = new OpenAI({ baseURL, apiKey });',
    '',
    '// Adapters are not an OpenAI resource: create one with a plain POST, then use its id as the model.',
    'const adapter = await (await fetch(`${baseURL}/adapters`, {',
    "  method: 'POST',",
    `  headers: { 'content-type': 'application/json'${withKey ? ', authorization: `Bearer ${apiKey}`' : ''} },`,
    `  body: JSON.stringify(${adapterJson(req.adapter, '  ')}),`,
    '})).json();',
    'if (!adapter.id) throw new Error(JSON.stringify(adapter));',
    'console.log(adapter.id);',
  ];
  if (req.completion.prompt.length) {
    const { prompt, temperature } = req.completion;
    lines.push(
      'const completion = await client.completions.create({',
      `  model: adapter.id, prompt: ${list(prompt)}, temperature: ${temperature},`,
      '});',
      'for (const choice of completion.choices) console.log(choice.text);',
    );
  }
  return lines.join('\n');
}
