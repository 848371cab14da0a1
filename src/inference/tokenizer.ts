/** Tokenizers named by manifest.tokenizer: byte-level (ByT5 style) or an HF tokenizer.json. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from './manifest.js';

export interface TextTokenizer {
  encode(text: string): number[];
  /** Text of generated ids; special and unused ids decode to nothing. */
  decode(ids: readonly number[]): string;
}

export class ByteTokenizer implements TextTokenizer {
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  constructor(private readonly offset: number) {}

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text), (b) => b + this.offset);
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) if (id >= this.offset && id < 256 + this.offset) bytes.push(id - this.offset);
    return this.decoder.decode(Uint8Array.from(bytes));
  }
}

/** The two methods used of @huggingface/tokenizers' Tokenizer. */
interface HfTok {
  encode(t: string, o: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], o: { skip_special_tokens: boolean }): string;
}

class HfTokenizer implements TextTokenizer {
  constructor(
    private readonly tok: HfTok,
    private readonly special: Set<number>,
  ) {}
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }
  decode(ids: readonly number[]): string {
    const kept = ids.filter((id) => !this.special.has(id));
    // @huggingface/tokenizers throws on an empty array; an empty completion (eos first) is ''.
    return kept.length === 0 ? '' : this.tok.decode(kept, { skip_special_tokens: true });
  }
}

export async function loadTokenizer(dir: string, manifest: Manifest): Promise<TextTokenizer> {
  const spec = manifest.tokenizer;
  if (spec.type === 'byte') return new ByteTokenizer(spec.offset);
  const file = path.join(dir, spec.file);
  const json: unknown = JSON.parse(await readFile(file, 'utf8'));
  // The package's declarations import their own files without extensions, which NodeNext cannot follow, so its
  // Tokenizer would arrive as `any`: the constructor is typed here.
  const { Tokenizer } = (await import('@huggingface/tokenizers')) as { Tokenizer: new (json: object, config: object) => HfTok };
  const s = manifest.special_ids;
  return new HfTokenizer(new Tokenizer(json as object, {}), new Set([s.pad, s.eos, s.unk, s.decoder_start]));
}

/** Token ids of one encoder input (a query or a hypermodel context): tokens, then eos when the manifest says so. */
export function encoderIds(tok: TextTokenizer, manifest: Manifest, text: string): number[] {
  const ids = tok.encode(text);
  if (manifest.encoder_input.append_eos) ids.push(manifest.special_ids.eos);
  return ids;
}

/** The hypermodel's one input text (models/README.md, `hyper_input`). */
export function serializeExamples(manifest: Manifest, examples: readonly { input: string; output: string }[]): string {
  const h = manifest.hyper_input;
  return examples.map((ex) => h.input_prefix + ex.input + h.output_prefix + ex.output).join(h.example_separator);
}
