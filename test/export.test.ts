// Export formats checked by their consumers: onnxruntime runs our ONNX graphs and gives our
// logits; our reader reads our .pth back bit for bit; torch.load + torchvision's
// load_state_dict(strict=True) take it and give our logits; `resnet export` writes them all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { Tensor } from '../src/core/tensor.js';
import { getModel, type ImageNetModelName } from '../src/models/builders.js';
import type { ResNet } from '../src/models/resnet.js';
import { exportOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../src/tools/onnx.js';
import { writeTorchStateDict } from '../src/io/torch-writer.js';
import { loadStateDictFromTorch } from '../src/io/torch.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { readWeights } from '../src/io/weights.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { IMAGENET_WEIGHTS } from '../src/weights/imagenet.generated.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { assertCloseToReference, maxAbsDiff } from './helpers/compare.js';
import { repoRoot } from './helpers/paths.js';
import { runTorchPython, torchUnavailable } from './helpers/torch-python.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

const work = mkdtempSync(join(tmpdir(), 'resnet-export-'));

/** Equal bytes, without the megabytes-long diff a failing deepEqual would print. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(Buffer.compare(actual, expected), 0, `${what}: ${actual.length} bytes differ from the expected ${expected.length}`);
}

/** The same shape and exactly the same elements. */
function assertSameTensor(actual: Tensor, expected: Tensor, what: string): void {
  assert.equal(actual.dtype, expected.dtype, what);
  assert.deepEqual(actual.shape, expected.shape, what);
  assert.equal(maxAbsDiff(actual, expected), 0, what);
}

/** A model in eval mode with the fill formula's weights (BN statistics far from 0 and 1). */
function filledEvalModel(name: ImageNetModelName, numClasses?: number): ResNet {
  return filledModel(() => getModel(name, { numClasses })).eval();
}

/** Two sizes (one not square) at batch 1 and 3: the ONNX input's N, H and W are symbolic. */
const INPUT_SHAPES = [[1, 3, 64, 64], [3, 3, 64, 64], [1, 3, 48, 80], [3, 3, 48, 80]];

async function assertOnnxMatches(model: ResNet, bytes: Uint8Array, what: string, shapes: number[][]): Promise<void> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    assert.deepEqual(session.inputNames, [ONNX_INPUT_NAME]);
    assert.deepEqual(session.outputNames, [ONNX_OUTPUT_NAME]);
    const [input] = session.inputMetadata;
    const [output] = session.outputMetadata;
    assert.ok(input.isTensor && output.isTensor);
    assert.deepEqual(input.shape, ['N', 3, 'H', 'W']);
    assert.deepEqual(output.shape, ['N', model.fc.outFeatures]);
    for (const shape of shapes) {
      const x = deterministicInput(shape);
      const expected = model.forward(x);
      const result = await session.run({ [ONNX_INPUT_NAME]: new ort.Tensor('float32', x.f32, shape) });
      const y = result[ONNX_OUTPUT_NAME];
      const actual = new Tensor(Float32Array.from(y.data as Float32Array), y.dims);
      assertCloseToReference(actual, expected, 1e-4, `${what} ${shape.join('x')}`);
    }
  } finally {
    await session.release();
  }
}

test('ONNX resnet18 (BatchNorm folded): onnxruntime gives our logits at two sizes, batch 1 and 3', async () => {
  const model = filledEvalModel('resnet18');
  await assertOnnxMatches(model, exportOnnx(model), 'resnet18', INPUT_SHAPES);
});

test('ONNX resnet18 with BatchNormalization nodes and 10 classes', async () => {
  const model = filledEvalModel('resnet18', 10);
  await assertOnnxMatches(model, exportOnnx(model, { foldBatchNorm: false }), 'resnet18 BN nodes', [INPUT_SHAPES[1], INPUT_SHAPES[2]]);
});

test('ONNX resnext50_32x4d (grouped convolutions): onnxruntime gives our logits at two sizes, batch 1 and 3', async () => {
  const model = filledEvalModel('resnext50_32x4d');
  await assertOnnxMatches(model, exportOnnx(model), 'resnext50_32x4d', INPUT_SHAPES);
});

test('ONNX resnet50 with replaceStrideWithDilation: dilated convolutions export', async () => {
  const model = getModel('resnet50', { replaceStrideWithDilation: [false, true, true], seed: 1 }).eval();
  await assertOnnxMatches(model, exportOnnx(model), 'resnet50 dilated', [[1, 3, 40, 56]]);
});

test('ONNX export is deterministic and leaves the model untouched', () => {
  const model = filledEvalModel('resnet18');
  const before = [...model.stateDict()].map(([k, t]) => [k, t.data.slice()] as const);
  const a = exportOnnx(model);
  assertSameBytes(exportOnnx(model), a, 'second export');
  for (const [k, data] of before) assert.equal(Buffer.compare(new Uint8Array(model.stateDict().get(k)!.data.buffer), new Uint8Array(data.buffer)), 0, k);
});

/** Every local file header of a zip: name, compression method and where its data starts. */
function zipRecords(bytes: Uint8Array): { name: string; method: number; dataStart: number; size: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records = [];
  for (let at = 0; view.getUint32(at, true) === 0x04034b50;) {
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    const size = view.getUint32(at + 18, true);
    const dataStart = at + 30 + nameLength + extraLength;
    records.push({ name: new TextDecoder().decode(bytes.subarray(at + 30, at + 30 + nameLength)), method: view.getUint16(at + 8, true), dataStart, size });
    at = dataStart + size;
  }
  return records;
}

test(".pth: our reader gets every tensor back exactly, in order, int64 num_batches_tracked included", () => {
  const model = getModel('resnet18', { seed: 7 });
  const state = model.stateDict();
  (state.get('bn1.num_batches_tracked')!.data as BigInt64Array)[0] = 123456789012n;
  const bytes = writeTorchStateDict(state);
  const back = loadStateDictFromTorch(bytes);
  assert.deepEqual([...back.keys()], [...state.keys()]);
  for (const [key, tensor] of state) assertSameTensor(back.get(key)!, tensor, key);
  assertSameBytes(writeTorchStateDict(state), bytes, 'same state dict, same bytes');
});

test(".pth: torch's layout, stored records, data aligned to 64 bytes", () => {
  const state = new Map([['a.weight', Tensor.from([1, 2, 3], [3])], ['a.b', Tensor.int64Scalar(5)], ['ünïcode', Tensor.zeros([2, 0])]]);
  const records = zipRecords(writeTorchStateDict(state));
  assert.deepEqual(records.map((r) => r.name), ['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/data/2', 'archive/version']);
  for (const r of records) {
    assert.equal(r.method, 0, `${r.name} is stored`);
    assert.equal(r.dataStart % 64, 0, `${r.name} starts at ${r.dataStart}`);
  }
  assert.deepEqual([...loadStateDictFromTorch(writeTorchStateDict(state)).keys()], [...state.keys()]);
});

test('.pth: torch.load + torchvision load_state_dict(strict=True) give our logits', { skip: torchUnavailable() }, () => {
  const script = `
import sys, numpy as np, torch, torchvision
name, path, x_path, y_path, resaved = sys.argv[1:]
model = getattr(torchvision.models, name)()
state = torch.load(path)
assert type(state).__name__ == 'OrderedDict', type(state)
model.load_state_dict(state, strict=True)
model.eval()
with torch.no_grad():
    y = model(torch.from_numpy(np.load(x_path)))
np.save(y_path, y.numpy())
torch.save(state, resaved)
`;
  for (const name of ['resnet18', 'resnext50_32x4d'] as const) {
    const model = filledEvalModel(name);
    const paths = { pth: join(work, `${name}.pth`), x: join(work, `${name}-x.npy`), y: join(work, `${name}-y.npy`), resaved: join(work, `${name}-torch.pth`) };
    const x = deterministicInput([2, 3, 64, 64]);
    writeFileSync(paths.pth, writeTorchStateDict(model.stateDict()));
    writeFileSync(paths.x, writeNpy(x));
    runTorchPython(script, [name, paths.pth, paths.x, paths.y, paths.resaved]);
    assertCloseToReference(model.forward(x), readNpy(readFileSync(paths.y)), 1e-4, `${name} torch vs ours`);
    // What torch read, saved again by torch, is what we wrote, bit for bit.
    const resaved = loadStateDictFromTorch(readFileSync(paths.resaved));
    for (const [key, tensor] of model.stateDict()) assertSameTensor(resaved.get(key)!, tensor, `${name} ${key}`);
  }
});

// --- the command ------------------------------------------------------------------------------

const bin = join(repoRoot, 'bin', 'resnet.js');

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  // A private weights cache: named weights resolve to files placed there, nothing is downloaded.
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, RESNET_TS_HOME: join(work, 'home') } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('resnet export writes onnx, safetensors and pth from a weights file; the class count comes from fc.weight', async () => {
  const model = filledEvalModel('resnet18', 10);
  const weights = join(work, 'r18-10.safetensors');
  writeFileSync(weights, writeSafetensors(model.stateDict()));
  for (const [file, format] of [['m.onnx', undefined], ['m.safetensors', undefined], ['m.pth', undefined], ['m.bin', 'pth']] as const) {
    const out = join(work, file);
    const r = resnet('export', 'resnet18', '--weights', weights, '-o', out, ...(format ? ['--format', format] : []));
    assert.equal(r.status, 0, r.stderr);
    const bytes = new Uint8Array(readFileSync(out));
    if (file.endsWith('.onnx')) {
      assertSameBytes(bytes, exportOnnx(model, { graphName: 'resnet18', metadata: { arch: 'resnet18' } }), file);
    } else {
      const back = readWeights(bytes);
      assert.deepEqual([...back.keys()], [...model.stateDict().keys()]);
      for (const [key, t] of model.stateDict()) assertSameTensor(back.get(key)!, t, `${file} ${key}`);
    }
  }
});

test("resnet export --weights IMAGENET1K_V1 takes torchvision's weights by name (here from the cache)", () => {
  const model = filledEvalModel('resnet18');
  const checkpoints = join(work, 'home', 'checkpoints');
  mkdirSync(checkpoints, { recursive: true });
  writeFileSync(join(checkpoints, IMAGENET_WEIGHTS.resnet18.IMAGENET1K_V1.fileName), writeTorchStateDict(model.stateDict()));
  const out = join(work, 'named.safetensors');
  const r = resnet('export', 'resnet18', '--weights', 'IMAGENET1K_V1', '-o', out);
  assert.equal(r.status, 0, r.stderr);
  const back = readWeights(new Uint8Array(readFileSync(out)));
  for (const [key, t] of model.stateDict()) assertSameTensor(back.get(key)!, t, key);
});

test('resnet export: bad arguments exit 2, bad files 3, weights that do not fit 4', () => {
  const weights = join(work, 'r18.safetensors');
  writeFileSync(weights, writeSafetensors(getModel('resnet18', { seed: 1 }).stateDict()));
  const cases: [string[], number, RegExp][] = [
    [['export', 'resnet18', '--weights', weights, '-o', join(work, 'x.unknown')], 2, /--format/],
    [['export', 'resnet18', '--weights', weights, '-o', join(work, 'x.pth'), '--format', 'tflite'], 2, /tflite/],
    [['export', 'resnet18', '--weights', weights, '-o', join(work, 'x.pth'), '--keep-batchnorm'], 2, /onnx only/],
    [['export', 'resnet18', '-o', join(work, 'x.pth')], 2, /--weights/],
    [['export', 'resnet18', '--weights', 'IMAGENET1K_V9', '-o', join(work, 'x.pth')], 2, /no weights 'IMAGENET1K_V9'; available: IMAGENET1K_V1, DEFAULT/],
    [['export', 'resnet18', '--weights', join(work, 'missing.pth'), '-o', join(work, 'x.pth')], 3, /missing\.pth: file not found/],
    [['export', 'resnet18', '--weights', weights, '-o', join(work, 'no-such-dir', 'x.pth')], 3, /cannot write output/],
    [['export', 'resnet34', '--weights', weights, '-o', join(work, 'x.pth')], 4, /does not fit resnet34: 80 missing \(layer1\.2\.conv1\.weight, .*--json lists every key/],
  ];
  for (const [args, status, message] of cases) {
    const r = resnet(...args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const json = resnet('export', 'resnet34', '--weights', weights, '-o', join(work, 'x.pth'), '--json');
  assert.equal(json.status, 4);
  const details = JSON.parse(json.stdout);
  assert.equal(details.missingKeys.length, 80);
  assert.deepEqual([details.unexpectedKeys, details.mismatchedKeys], [[], []]);
});

