// ModelWorker and serveModelWorker over Node's worker_threads (the browser's Web Worker is in
// test/browser.test.ts): load a model from a weight file's bytes, run forward with a captured
// layer, classify an image, and report errors as rejections. Logits within 1e-5 of the largest
// (the worker and this thread run the same backend).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { ModelWorker } from '../src/web/model-worker.js';
import { withBackend } from '../src/backends/index.js';
import { resnet18 } from '../src/models/builders.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { decodeImage } from '../src/preprocess/decode.js';
import { ImageClassification } from '../src/preprocess/transforms.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { fixturePath } from './helpers/paths.js';

const TOL = 1e-5;

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(worst <= TOL * scale, `${what}: max |Δ| ${worst} > ${TOL} × ${scale}`);
}

test('a model in a worker_threads Worker: loaded from bytes, forward with a captured layer, classify, errors', async () => {
  const model = filledModel(() => resnet18({ numClasses: 10 })).eval();
  const weights = writeSafetensors(model.stateDict());
  const worker = new ModelWorker(new Worker(new URL('./helpers/model-worker-node.js', import.meta.url)));
  try {
    await assert.rejects(worker.forward(deterministicInput([1, 3, 32, 32])), /no model: send 'load' first/);
    const loaded = await worker.load({ arch: 'resnet18', options: { numClasses: 10 }, weights, backend: 'ref' });
    assert.deepEqual(loaded, { backend: 'ref', threads: 1, parameters: model.parameterCount() });

    const x = deterministicInput([1, 3, 64, 64]);
    const result = await worker.forward(x, { capture: ['layer1', 'fc'] });
    const expected = withBackend('ref', () => model.forward(x));
    assertClose(result.output.f32, expected.f32, 'forward');
    assert.deepEqual(result.captured.get('layer1')?.shape, [1, 64, 16, 16]);
    assertClose(result.captured.get('fc')!.f32, expected.f32, 'the captured fc output is the output');
    assert.ok(result.milliseconds > 0);

    const png = readFileSync(fixturePath('preprocess', 'images', 'coffee_rgb_150x100.png'));
    const classified = await worker.classify(png, { resizeSize: 80, cropSize: 64 });
    const input = new ImageClassification({ resizeSize: 80, cropSize: 64 }).forward(await decodeImage(png));
    assert.deepEqual([...classified.input!.f32], [...input.f32]);
    assertClose(classified.output.f32, withBackend('ref', () => model.forward(input)).f32, 'classify');

    await assert.rejects(worker.forward(x, { capture: ['layer9'] }), /the model has no module 'layer9'/);
    await assert.rejects(worker.load({ arch: 'resnet18', weights: new Uint8Array([1, 2, 3]) }), (error: Error) => error.name === 'WeightFileError');
  } finally {
    worker.terminate();
  }
  await assert.rejects(worker.forward(deterministicInput([1, 3, 32, 32])), /terminated/);
});
