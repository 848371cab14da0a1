/**
 * The tensor table of a format-2 manifest: adapter tensors fed whole or one input per layer (each input reading
 * its layer's slice), the decoder's per-layer keys and values, and the refusals naming graph and input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adapterFeeds, type RowAdapter } from '../src/inference/feeds.js';
import type { IoSpec } from '../src/inference/manifest.js';
import { buildTensorTable } from '../src/inference/tensor-table.js';
import { DIMS, layeredManifest, type LayeredManifest } from './fakes/layered-manifest.js';

const build = (m: LayeredManifest) => buildTensorTable(m, ['lora', 'prefix']);

/** The manifest with both kind decoders, `graph`'s inputs edited. */
function editKindDecoder(graph: 'decoder_lora' | 'decoder_prefix', edit: (ios: IoSpec[]) => IoSpec[]): LayeredManifest {
  const m = layeredManifest(['lora', 'prefix']);
  m.graphs[graph]!.inputs = edit(m.graphs[graph]!.inputs);
  return m;
}

/** The manifest with the decoder's inputs (or outputs) edited. */
function editDecoder(edit: (ios: IoSpec[]) => IoSpec[], side: 'inputs' | 'outputs' = 'inputs'): LayeredManifest {
  const m = layeredManifest();
  m.graphs.decoder[side] = edit(m.graphs.decoder[side]);
  return m;
}
const named = (name: string) => (io: IoSpec) => io.name === name;
const without = (name: string) => (ios: IoSpec[]) => ios.filter((io) => io.name !== name);

describe('tensor table, format 2', () => {
  it('feeds the decoder each layered tensor per layer, a mask whole, the encoder whole', () => {
    const table = build(layeredManifest());
    const { layers: L, dModel, rank, prefix: P } = DIMS;
    const dec = table.graphs.decoder!;
    const qa = dec.adapters.filter((a) => a.tensor === 'lora.decoder.self.q.a');
    assert.deepEqual(
      qa.map((a) => [a.input, a.layer, a.shape, a.size, a.offset, a.tensorSize]),
      Array.from({ length: L }, (_, l) => [`lora.decoder.self.q.a.${l}`, l, [dModel, rank], dModel * rank, l * dModel * rank, L * dModel * rank]),
    );
    const mask = dec.adapters.find((a) => a.tensor === 'prefix.decoder.self.mask')!;
    assert.deepEqual([mask.input, mask.layer, mask.shape, mask.offset], ['prefix.decoder.self.mask', null, [P], 0]);
    assert.ok(table.graphs.encoder!.adapters.every((a) => a.layer === null && a.input === a.tensor));
    assert.deepEqual(dec.layers[2], {
      pastKey: 'past_key.2',
      pastValue: 'past_value.2',
      crossKey: 'cross_key.2',
      crossValue: 'cross_value.2',
      newKey: 'new_key.2',
      newValue: 'new_value.2',
    });
    assert.equal(dec.layers.length, L);
  });

  it('a per-layer input feeds each row its layer of the tensor, zeros for a row without an adapter', () => {
    const table = build(layeredManifest());
    const dec = table.graphs.decoder!;
    // Every value distinct: a layer read at the wrong offset, or a row at the wrong place, shows.
    const adapter = (base: number): RowAdapter => ({
      kind: 'lora',
      tensors: Object.fromEntries(table.kinds.lora!.map((t) => [t.name, Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, (_, i) => base + i)])),
    });
    const feeds = adapterFeeds(dec, [adapter(1000), null, adapter(5000)]);
    const per = DIMS.dModel * DIMS.rank;
    const layer1 = (base: number) => Array.from({ length: per }, (_, i) => base + per + i);
    assert.deepEqual(feeds['lora.decoder.self.q.a.1']!.dims, [3, DIMS.dModel, DIMS.rank]);
    assert.deepEqual([...feeds['lora.decoder.self.q.a.1']!.data], [...layer1(1000), ...new Array<number>(per).fill(0), ...layer1(5000)]);
    // The whole mask input of the other kind is zeros for every row: no row has a prefix adapter.
    assert.deepEqual([...feeds['prefix.decoder.self.mask']!.data], new Array<number>(3 * DIMS.prefix).fill(0));
    assert.throws(() => adapterFeeds(dec, [{ kind: 'lora', tensors: {} }]), /adapter tensor lora\.decoder\.self\.q\.a: expected 24 values, got none/);
  });

  it('refuses a tensor with a layer missing, a layer twice, or fed both whole and per layer', () => {
    assert.throws(
      () => build(editDecoder(without('lora.decoder.self.q.b.1'))),
      /field graphs\.decoder\.inputs: adapter tensor lora\.decoder\.self\.q\.b is fed per layer but misses lora\.decoder\.self\.q\.b\.1 \(it has 3 layers\)/,
    );
    assert.throws(
      () => build(editDecoder((ios) => [...ios, ios.find(named('lora.decoder.self.q.b.2'))!])),
      /field graphs\.decoder\.inputs: adapter tensor lora\.decoder\.self\.q\.b: layer input lora\.decoder\.self\.q\.b\.2 is declared twice/,
    );
    assert.throws(
      () => build(editDecoder((ios) => [...ios, { name: 'lora.decoder.self.q.b', dtype: 'float32', shape: ['batch', 3, DIMS.rank, DIMS.dModel] }])),
      /field graphs\.decoder\.inputs: adapter tensor lora\.decoder\.self\.q\.b is fed both whole \(lora\.decoder\.self\.q\.b\) and per layer \(lora\.decoder\.self\.q\.b\.0\)/,
    );
    assert.throws(
      () => build(editDecoder((ios) => [...ios, ios.find(named('prefix.decoder.self.mask'))!])),
      /field graphs\.decoder\.inputs: adapter tensor prefix\.decoder\.self\.mask is fed by 2 inputs named prefix\.decoder\.self\.mask/,
    );
  });

  it('refuses a layer input out of range, of the wrong shape, or of a tensor without a layer dimension', () => {
    assert.throws(
      () => build(editDecoder((ios) => [...ios, { name: 'lora.decoder.self.q.a.3', dtype: 'float32', shape: ['batch', DIMS.dModel, DIMS.rank] }])),
      /field graphs\.decoder\.inputs: lora\.decoder\.self\.q\.a\.3 feeds layer 3 of lora\.decoder\.self\.q\.a, which has 3 layers/,
    );
    assert.throws(
      () => build(editDecoder((ios) => ios.map((io) => (io.name === 'lora.decoder.self.q.a.0' ? { ...io, shape: ['batch', DIMS.rank, DIMS.dModel] } : io)))),
      /field graphs\.decoder\.inputs: lora\.decoder\.self\.q\.a\.0 is float32\["batch",2,4\]; adapters\.kinds\.lora gives float32\["batch",4,2\] for layer 0/,
    );
    assert.throws(
      () => build(editDecoder((ios) => [...without('prefix.decoder.self.mask')(ios), { name: 'prefix.decoder.self.mask.0', dtype: 'float32', shape: ['batch'] }])),
      /field graphs\.decoder\.inputs: prefix\.decoder\.self\.mask\.0 feeds one layer of prefix\.decoder\.self\.mask, whose shape \[3\] has no layer dimension/,
    );
  });

  it('refuses a decoder without every layer\'s keys and values, or with them stacked', () => {
    assert.throws(() => build(editDecoder(without('past_value.2'))), /field graphs\.decoder\.inputs: missing past_value\.2 \(dims\.num_decoder_layers is 3\)/);
    assert.throws(() => build(editDecoder(without('new_key.1'), 'outputs')), /field graphs\.decoder\.outputs: missing new_key\.1/);
    assert.throws(
      () => build(editDecoder((ios) => ios.map((io) => (io.name === 'new_value.0' ? { ...io, shape: ['batch', DIMS.heads, 'past_len', DIMS.dk] } : io)), 'outputs')),
      /field graphs\.decoder\.outputs: new_value\.0 is float32\["batch",2,"past_len",5\]; dims give float32\["batch",2,1,5\]/,
    );
    assert.throws(
      () => build(editDecoder((ios) => ios.map((io) => (io.name === 'cross_key.1' ? { ...io, shape: ['batch', DIMS.heads + 1, 'src_len', DIMS.dk] } : io)))),
      /field graphs\.decoder\.inputs: cross_key\.1 is float32\["batch",3,"src_len",5\]/,
    );
    // A format-1 decoder's stacked cache input is no input of a format-2 decoder.
    assert.throws(
      () => build(editDecoder((ios) => [...ios, { name: 'past_key', dtype: 'float32', shape: ['batch', DIMS.layers, DIMS.heads, 'past_len', DIMS.dk] }])),
      /field graphs\.decoder\.inputs: past_key is neither a decoder input nor an adapter tensor/,
    );
    assert.throws(
      () => build(editDecoder((ios) => [...ios, { name: 'past_key.3', dtype: 'float32', shape: ['batch', DIMS.heads, 'past_len', DIMS.dk] }])),
      /field graphs\.decoder\.inputs: past_key\.3 is neither a decoder input nor an adapter tensor/,
    );
  });

  it('gives each kind decoder the decoder\'s inputs of its kind, and no kind decoder to a bundle without one', () => {
    const table = build(layeredManifest(['lora', 'prefix']));
    const dec = table.graphs.decoder!;
    for (const kind of ['lora', 'prefix'] as const) {
      const own = table.graphs[`decoder_${kind}`]!;
      assert.deepEqual(own.adapters, dec.adapters.filter((a) => a.kind === kind));
      assert.deepEqual(own.layers, dec.layers);
      assert.deepEqual(own.core, dec.core);
    }
    assert.equal(build(layeredManifest()).graphs.decoder_lora, undefined);
  });

  it('refuses a kind decoder with an input of the other kind, or without one of its own kind\'s', () => {
    const other = { name: 'prefix.decoder.self.key.0', dtype: 'float32', shape: ['batch', DIMS.heads, DIMS.prefix, DIMS.dk] } as const;
    assert.throws(
      () => build(editKindDecoder('decoder_lora', (ios) => [...ios, { ...other, shape: [...other.shape] }])),
      /field graphs\.decoder_lora\.inputs: prefix\.decoder\.self\.key\.0 is a prefix adapter input; decoder_lora takes lora ones only/,
    );
    assert.throws(
      () => build(editKindDecoder('decoder_prefix', without('prefix.decoder.self.mask'))),
      /field graphs\.decoder_prefix\.inputs: missing prefix\.decoder\.self\.mask, a prefix adapter input of graphs\.decoder/,
    );
    assert.throws(
      () => build(editKindDecoder('decoder_lora', (ios) => ios.filter((io) => !io.name.startsWith('lora.decoder.self.q.b.')))),
      /field graphs\.decoder_lora\.inputs: missing lora\.decoder\.self\.q\.b\.0, a lora adapter input of graphs\.decoder/,
    );
    assert.throws(
      () => build(editKindDecoder('decoder_lora', without('lora.decoder.self.q.b.1'))),
      /field graphs\.decoder_lora\.inputs: adapter tensor lora\.decoder\.self\.q\.b is fed per layer but misses lora\.decoder\.self\.q\.b\.1/,
    );
    // A tensor the decoder does not read (the encoder's): the kind decoder must not read it either.
    const encoderLayers = Array.from({ length: DIMS.layers }, (_, l): IoSpec => ({ name: `lora.encoder.self.q.a.${l}`, dtype: 'float32', shape: ['batch', DIMS.dModel, DIMS.rank] }));
    assert.throws(
      () => build(editKindDecoder('decoder_lora', (ios) => [...ios, ...encoderLayers])),
      /field graphs\.decoder_lora\.inputs: lora\.encoder\.self\.q\.a\.0 is not an input of graphs\.decoder/,
    );
  });

  it('refuses a kind decoder whose keys, values or core inputs differ from the decoder\'s, or of a kind the bundle lacks', () => {
    assert.throws(() => build(editKindDecoder('decoder_prefix', without('past_key.1'))), /field graphs\.decoder_prefix\.inputs: missing past_key\.1 \(dims\.num_decoder_layers is 3\)/);
    assert.throws(
      () => build(editKindDecoder('decoder_lora', (ios) => ios.map((io) => (io.name === 'input_ids' ? { ...io, dtype: 'float32' } : io)))),
      /field graphs\.decoder_lora\.inputs: input_ids is float32\["batch",1\]; graphs\.decoder has int64\["batch",1\]/,
    );
    assert.throws(
      () => build(editKindDecoder('decoder_lora', (ios) => ios.map((io) => (io.name === 'past_value.2' ? { ...io, shape: ['batch', DIMS.heads, 'past', DIMS.dk] } : io)))),
      /field graphs\.decoder_lora\.inputs: past_value\.2 is float32\["batch",2,"past",5\]; graphs\.decoder has float32\["batch",2,"past_len",5\]/,
    );
    const m = layeredManifest(['prefix']);
    assert.throws(() => buildTensorTable(m, ['lora']), /field graphs\.decoder_prefix: the bundle has no adapter kind prefix \(field adapters\.kinds\)/);
  });
});
