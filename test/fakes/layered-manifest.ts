/**
 * A small manifest's dims, adapter kinds and graphs in bundle format 2, laid out as the exporter lays them out
 * (models/README.md, "Graphs"): the decoder takes keys, values and adapter tensors one input per layer, except
 * a tensor without a layer dimension (a "peft" prefix's mask), which stays whole; the encoder takes whole
 * tensors; each kind decoder asked for is the decoder less the other kind's adapter inputs. For tests of the
 * tensor table and the decoder's feeds without a bundle on disk.
 */
import { kindDecoderName, type AdapterKindName, type IoSpec, type Manifest, type TensorSpec } from '../../src/inference/manifest.js';

export type LayeredManifest = Pick<Manifest, 'dims' | 'adapters' | 'graphs'>;

/** Sizes small enough to compare every value, but every one distinct, so a swapped axis shows. */
export const DIMS = { layers: 3, heads: 2, dk: 5, dModel: 4, rank: 2, prefix: 3 } as const;

const tensor = (name: string, shape: number[]): TensorSpec => ({ name, dtype: 'float32', shape });

/** `kindDecoders`: the kinds whose decoder (`decoder_<kind>`) the manifest declares (none by default). */
export function layeredManifest(kindDecoders: readonly AdapterKindName[] = []): LayeredManifest {
  const { layers: L, heads: H, dk, dModel, rank, prefix: P } = DIMS;
  const lora = [
    tensor('lora.encoder.self.q.a', [L, dModel, rank]),
    tensor('lora.decoder.self.q.a', [L, dModel, rank]),
    tensor('lora.decoder.self.q.b', [L, rank, dModel]),
    tensor('lora.decoder.cross.v.a', [L, dModel, rank]),
  ];
  const prefix = [
    tensor('prefix.encoder.self.key', [L, H, P, dk]),
    tensor('prefix.decoder.self.key', [L, H, P, dk]),
    tensor('prefix.decoder.self.value', [L, H, P, dk]),
    tensor('prefix.decoder.self.mask', [P]),
  ];
  // The encoder computes the cross-attention values, so cross-attention LoRA on v lives there.
  const inEncoder = (t: TensorSpec) => t.name.includes('.encoder.') || t.name.includes('.cross.v.');
  const all = [...lora, ...prefix];
  const io = (name: string, shape: (number | string)[], dtype: IoSpec['dtype'] = 'float32'): IoSpec => ({ name, dtype, shape });
  const perLayer = (name: string, shape: (number | string)[]) => Array.from({ length: L }, (_, l) => io(`${name}.${l}`, shape));
  const decoderAdapters = all
    .filter((t) => !inEncoder(t))
    .flatMap((t) => (t.shape.length > 1 ? perLayer(t.name, ['batch', ...t.shape.slice(1)]) : [io(t.name, ['batch', ...t.shape])]));
  const hyper = (tensors: TensorSpec[]) => ({
    file: 'hyper.onnx',
    inputs: [io('input_ids', ['batch', 'ctx_len'], 'int64'), io('attention_mask', ['batch', 'ctx_len'], 'int64')],
    outputs: tensors.map((t) => io(t.name, ['batch', ...t.shape])),
  });
  const decoder = {
    file: 'decoder.onnx',
    inputs: [
      io('input_ids', ['batch', 1], 'int64'),
      io('self_attention_mask', ['batch', 'past_len_plus_1'], 'int64'),
      io('encoder_attention_mask', ['batch', 'src_len'], 'int64'),
      ...perLayer('past_key', ['batch', H, 'past_len', dk]),
      ...perLayer('past_value', ['batch', H, 'past_len', dk]),
      ...perLayer('cross_key', ['batch', H, 'src_len', dk]),
      ...perLayer('cross_value', ['batch', H, 'src_len', dk]),
      ...decoderAdapters,
    ],
    outputs: [io('logits', ['batch', 7]), ...perLayer('new_key', ['batch', H, 1, dk]), ...perLayer('new_value', ['batch', H, 1, dk])],
  };
  const other = (kind: AdapterKindName) => (kind === 'lora' ? 'prefix.' : 'lora.');
  const kindGraphs = Object.fromEntries(
    kindDecoders.map((kind) => [
      kindDecoderName(kind),
      { ...decoder, file: `${kindDecoderName(kind)}.onnx`, inputs: decoder.inputs.filter((x) => !x.name.startsWith(other(kind))) },
    ]),
  );
  return {
    dims: {
      vocab_size: 7,
      d_model: dModel,
      d_kv: dk,
      num_heads: H,
      d_ff: 8,
      num_layers: L,
      num_decoder_layers: L,
      relative_attention_num_buckets: 4,
      relative_attention_max_distance: 8,
      feed_forward_proj: 'relu',
      tie_word_embeddings: false,
      layer_norm_epsilon: 1e-6,
    },
    adapters: { default_kind: 'lora', kinds: { lora: { tensors: lora }, prefix: { tensors: prefix, attention: 'peft' } } },
    graphs: {
      encoder: {
        file: 'encoder.onnx',
        inputs: [io('input_ids', ['batch', 'src_len'], 'int64'), io('attention_mask', ['batch', 'src_len'], 'int64'), ...all.filter(inEncoder).map((t) => io(t.name, ['batch', ...t.shape]))],
        outputs: [io('cross_key', ['batch', L, H, 'src_len', dk]), io('cross_value', ['batch', L, H, 'src_len', dk])],
      },
      decoder,
      ...kindGraphs,
      hyper_lora: hyper(lora),
      hyper_prefix: hyper(prefix),
    },
  };
}
