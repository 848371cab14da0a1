/**
 * Loads a bundle folder and checks everything that can be checked without ONNX Runtime
 * (models/README.md, "What the service validates at boot"). Session names are checked in session.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ADAPTER_KINDS, Manifest, type AdapterKindName, type GraphName } from './manifest.js';
import { buildTensorTable, type TensorTable } from './tensor-table.js';

/** The one bundle format this service reads (models/README.md). */
const FORMAT_VERSION = 2;

export class BundleError extends Error {
  override name = 'BundleError';
}

export interface Bundle {
  dir: string;
  manifest: Manifest;
  table: TensorTable;
  kinds: AdapterKindName[];
  graphFile(graph: GraphName): string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Files of the optional refinement graphs: outside the fingerprint (training/hypert5/bundle.py says the same). */
const REFINE_FILE_PREFIX = 'train_step_';
/** The optional kind decoders' files, outside it too: each computes what `decoder` computes for its rows. */
const UNFINGERPRINTED = new Set(['decoder_lora.onnx', 'decoder_prefix.onnx']);

/**
 * The model's identity, from which adapter ids derive: every file but the refinement graphs and the kind
 * decoders, which change no one-pass adapter or completion, so adding them to a bundle keeps every stored
 * adapter's id.
 */
function computeFingerprint(files: Record<string, string>): string {
  const lines = Object.keys(files)
    .filter((f) => !f.startsWith(REFINE_FILE_PREFIX) && !UNFINGERPRINTED.has(f))
    .sort()
    .map((f) => `${f}:${files[f]}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex').slice(0, 16);
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new BundleError(`${file}: cannot read the bundle manifest (MODEL_DIR=${dir})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const fv = (json as { format_version?: unknown } | null)?.format_version;
  if (fv !== FORMAT_VERSION) {
    // Version 1 differs only in the decoder's stacked layer inputs: its checkpoint converts, nothing retrains.
    const fix = fv === 1
      ? ': re-export it (`python -m hypert5.unbundle --bundle <old> --out <dir>`, then `python -m hypert5.export --checkpoint <dir> --out <new>`, from training/; models/README.md, "Producing a bundle")'
      : '';
    throw new BundleError(`${file}: field format_version is ${JSON.stringify(fv)}; this service reads version ${FORMAT_VERSION} (per-layer decoder inputs)${fix}`);
  }
  const first = Value.Errors(Manifest, json).First();
  if (first) {
    throw new BundleError(`${file}: field ${first.path.slice(1).replace(/\//g, '.') || '(root)'} ${first.message}`);
  }
  return json as Manifest;
}

/**
 * The optional `refine` section: each kind it names is a kind of the bundle, with its own step graph declared
 * in `graphs`, and the shared weights file is listed in `files` (so its sha256 was checked above).
 */
function checkRefine(manifest: Manifest, kinds: readonly AdapterKindName[], mfile: string): void {
  const refine = manifest.refine;
  if (!refine) return;
  if (!(refine.weights_file in manifest.files)) {
    throw new BundleError(`${mfile}: field refine.weights_file ${JSON.stringify(refine.weights_file)} is not listed in field files`);
  }
  for (const kind of ADAPTER_KINDS) {
    const spec = refine.kinds[kind];
    if (!spec) continue;
    if (!kinds.includes(kind)) throw new BundleError(`${mfile}: field refine.kinds.${kind}: the bundle has no adapter kind ${kind}`);
    if (spec.graph !== `train_step_${kind}`) throw new BundleError(`${mfile}: field refine.kinds.${kind}.graph is ${spec.graph}; expected train_step_${kind}`);
    if (!manifest.graphs[spec.graph]) throw new BundleError(`${mfile}: field refine.kinds.${kind}.graph names graphs.${spec.graph}, which is missing`);
  }
}

/** Reads and verifies a bundle: schema, files and their sha256, fingerprint, graph/adapter consistency. */
export async function loadBundle(dir: string, opts: { verifyHashes?: boolean } = {}): Promise<Bundle> {
  const manifest = await readManifest(dir);
  const mfile = path.join(dir, 'manifest.json');
  for (const [file, expected] of Object.entries(manifest.files)) {
    const full = path.join(dir, file);
    if (path.basename(file) !== file) throw new BundleError(`${mfile}: field files: ${JSON.stringify(file)} is not a plain file name`);
    if (!existsSync(full)) throw new BundleError(`${full}: missing (listed in ${mfile} field files)`);
    if (opts.verifyHashes !== false) {
      const actual = await sha256File(full);
      if (actual !== expected) throw new BundleError(`${full}: sha256 ${actual} does not match ${mfile} field files.${file} (${expected})`);
    }
  }
  const fp = computeFingerprint(manifest.files);
  if (fp !== manifest.fingerprint) {
    throw new BundleError(`${mfile}: field fingerprint is ${manifest.fingerprint}; the files give ${fp}`);
  }
  if (manifest.tokenizer.type === 'tokenizers' && !(manifest.tokenizer.file in manifest.files)) {
    throw new BundleError(`${path.join(dir, manifest.tokenizer.file)}: required by field tokenizer but not listed in field files`);
  }
  const kinds = ADAPTER_KINDS.filter((k) => manifest.adapters.kinds[k] !== undefined);
  if (!kinds.includes(manifest.adapters.default_kind)) {
    throw new BundleError(`${mfile}: field adapters.default_kind is ${manifest.adapters.default_kind}, not one of adapters.kinds`);
  }
  for (const kind of kinds) {
    if (!manifest.graphs[`hyper_${kind}`]) throw new BundleError(`${mfile}: field graphs.hyper_${kind} missing for adapter kind ${kind}`);
  }
  for (const [g, spec] of Object.entries(manifest.graphs)) {
    if (spec && !(spec.file in manifest.files)) {
      throw new BundleError(`${mfile}: field graphs.${g}.file ${JSON.stringify(spec.file)} is not listed in field files`);
    }
  }
  checkRefine(manifest, kinds, mfile);
  let table: TensorTable;
  try {
    table = buildTensorTable(manifest, kinds);
  } catch (e) {
    throw new BundleError(`${mfile}: ${(e as Error).message}`);
  }
  return {
    dir,
    manifest,
    table,
    kinds,
    graphFile(graph) {
      const spec = manifest.graphs[graph];
      if (!spec) throw new BundleError(`${mfile}: field graphs.${graph} missing`);
      return path.join(dir, spec.file);
    },
  };
}
