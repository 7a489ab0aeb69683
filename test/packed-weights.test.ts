// The packed-weight cache that the native and wasm backends share (src/backends/packed-weights.ts):
// what makes an entry stale (a write in place, another scale), one entry per key of a weight,
// least recently used dropped past the limit (and freed), a pack that throws leaves nothing
// valid; and both backends keep a weight's two packings when one model runs at two input sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { PackedWeights } from '../src/backends/packed-weights.js';
import { createReferenceBackend } from '../src/backends/ref/kernels.js';
import { getBackend, listBackends, withBackend, type Backend } from '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { uniform_ } from '../src/nn/init.js';
import { assertCloseToReference } from './helpers/compare.js';

/** A cache of strings, counting packs and frees. */
function counting(limitBytes = Infinity) {
  const log = { packs: 0, freed: [] as string[] };
  let n = 0;
  const cache = new PackedWeights<string>(limitBytes, (data) => log.freed.push(data));
  const get = (w: Tensor, key: string, bytes = 4, scale: Float64Array | null = null): string =>
    cache.get(w, key, bytes, scale, () => `${key}#${n++}`, () => void log.packs++);
  return { cache, log, get };
}

test('PackedWeights: a hit packs nothing; a write in place or another scale packs again into the same storage', () => {
  const { cache, log, get } = counting();
  const w = Tensor.zeros([4]);
  const first = get(w, 'a');
  assert.equal(get(w, 'a'), first);
  assert.equal(log.packs, 1);
  w.f32[2] = 1;
  w.bumpVersion(); // what every in-place write of the library does
  assert.equal(get(w, 'a'), first, 'repacked in place, not reallocated');
  assert.equal(log.packs, 2);
  const scale = new Float64Array([1, 2, 3, 4]);
  get(w, 'a', 4, scale);
  get(w, 'a', 4, scale);
  assert.equal(log.packs, 3, 'a new scale packs once');
  assert.equal(cache.bytes, 4);
});

test('PackedWeights: one entry per key of a weight; least recently used dropped past the limit, and freed', () => {
  const { cache, log, get } = counting(12);
  const [w1, w2] = [Tensor.zeros([2]), Tensor.zeros([2])];
  const a = get(w1, 'small'); // 4 bytes each
  const b = get(w1, 'large');
  assert.notEqual(a, b);
  get(w2, 'small');
  assert.equal(cache.bytes, 12);
  assert.equal(get(w1, 'small'), a, 'both keys of w1 kept');
  assert.equal(log.packs, 3);
  get(w2, 'large'); // over the limit: the least recently used (w1 'large') goes
  assert.deepEqual(log.freed, [b]);
  assert.equal(cache.bytes, 12);
  assert.equal(get(w1, 'small'), a);
  assert.notEqual(get(w1, 'large'), b, 'dropped, so packed anew');
});

test('PackedWeights: a pack that throws leaves no valid entry', () => {
  const cache = new PackedWeights<number[]>(Infinity);
  const w = Tensor.zeros([2]);
  let fail = true;
  const pack = (data: number[]): void => {
    if (fail) throw new Error('pack failed');
    data.push(1);
  };
  assert.throws(() => cache.get(w, 'k', 8, null, () => [], pack), /pack failed/);
  fail = false;
  assert.deepEqual(cache.get(w, 'k', 8, null, () => [], pack), [1], 'packed on the next call');
});

test('native and wasm keep both packings of a weight run at two input sizes (Winograd and GEMM), and stay right', () => {
  const ref = createReferenceBackend();
  const rng = new Generator(11);
  const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } as const;
  // 256 channels: Winograd on every build at 28×28 (F(4, 3) on 4-float vectors, F(2, 3) on the
  // wide ones), the direct GEMM at 3×3 (too few tiles): two layouts of one weight.
  const large = uniform_(Tensor.zeros([1, 256, 28, 28]), -1, 1, rng);
  const small = uniform_(Tensor.zeros([1, 256, 3, 3]), -1, 1, rng);
  const fast: [string, Backend & { stats(): { weightBytes: number } }][] = [['wasm', createWasmBackend({ threads: 1 })]];
  if (listBackends().includes('native')) fast.push(['native', withBackend('native', getBackend) as Backend & { stats(): { weightBytes: number } }]);
  for (const [name, backend] of fast) {
    const weight = uniform_(Tensor.zeros([32, 256, 3, 3]), -1, 1, rng);
    const before = backend.stats().weightBytes;
    backend.conv2d(large, weight, null, p, 28, 28);
    backend.conv2d(small, weight, null, p, 3, 3);
    const both = backend.stats().weightBytes;
    assert.ok(both - before > weight.size * 4 * 2, `${name}: two packings held (${both - before} bytes)`);
    for (let i = 0; i < 2; i++) {
      assertCloseToReference(backend.conv2d(large, weight, null, p, 28, 28), ref.conv2d(large, weight, null, p, 28, 28), 1e-5, `${name}: 28×28`);
      assertCloseToReference(backend.conv2d(small, weight, null, p, 3, 3), ref.conv2d(small, weight, null, p, 3, 3), 1e-5, `${name}: 3×3`);
    }
    assert.equal(backend.stats().weightBytes, both, `${name}: switching sizes packs nothing new`);
  }
});
