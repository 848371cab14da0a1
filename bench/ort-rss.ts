/**
 * Child process of bench/ort-settings.ts: what one session of a graph costs in resident memory.
 *
 *   node --import tsx bench/ort-rss.ts <graph.onnx> <feeds.v8> '<session options JSON>'
 *
 * After one session that loads the runtime, opens a session, runs it a few times on the given feeds (the arena
 * and the memory pattern grow on the first runs), then a second session of the same graph likewise; prints the resident-set growth of each stage in bytes.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import * as ort from 'onnxruntime-node';
import type { Feeds } from './ort-feeds.js';
import { rssBytes } from './stats.js';

const [file, feedsFile, optionsJson] = process.argv.slice(2) as [string, string, string];
const { feeds, fetches } = v8.deserialize(readFileSync(feedsFile)) as { feeds: Feeds; fetches: string[] };
const tensors = Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, new ort.Tensor(t.dtype, t.data, t.dims)]));
const options = JSON.parse(optionsJson) as ort.InferenceSession.SessionOptions;

const open: number[] = [];
const run: number[] = [];
const keep: ort.InferenceSession[] = [];
// A first session loads the native library and its globals; the two measured ones each cost only themselves.
keep.push(await ort.InferenceSession.create(file, options));
for (let i = 0; i < 2; i++) {
  const r0 = rssBytes(process.pid);
  const session = await ort.InferenceSession.create(file, options);
  const r1 = rssBytes(process.pid);
  for (let j = 0; j < 5; j++) await session.run(tensors, fetches);
  open.push(r1 - r0);
  run.push(rssBytes(process.pid) - r1);
  keep.push(session);
}
console.log(JSON.stringify({ open, run }));
