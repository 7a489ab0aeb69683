// Our ResNets against torchvision 0.14 (torch 1.13) on the cases of test/fixtures/parity/make_parity.py:
// both sides fill every parameter and buffer with the formula in test/helpers/fill.ts, so the
// fixtures hold only torch's outputs. Tolerance: max|ours - torch| <= 1e-4 * max|torch| per output
// (manifest.json's relTol). float32 against float64 in torch differs by about 1e-6 of that scale,
// while the subtlest plausible bug (BatchNorm eps 1e-3 instead of 1e-5) moves logits by 6e-4.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { getModel, listModels, listBackends, ResNet, Bottleneck, type AnyResNet } from '../src/index.js';
import { withBackend } from '../src/backends/index.js';
import type { Tensor } from '../src/core/tensor.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { assertCloseToReference } from './helpers/compare.js';
import { deterministicInput, deterministicTensor, filledModel, fnv1a32, uninitialised } from './helpers/fill.js';
import { fixturePath } from './helpers/paths.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

/** One case as make_parity.py wrote it: a torchvision builder or a custom Bottleneck ResNet, with torchvision's kwargs. */
interface ParityCase {
  name: string;
  builder?: string;
  block?: 'Bottleneck';
  layers?: number[];
  options: Record<string, unknown>;
  input: number[];
  fixture: string;
}

interface Manifest {
  torch: string;
  torchvision: string;
  relTol: number;
  cases: ParityCase[];
  train: { builder: string; input: number[]; file: string };
}

interface FillSample {
  key: string;
  shape: number[];
  dtype: 'float32' | 'int64';
  fnv1a32: number;
  indices: number[];
  values: number[];
}

type KeyRow = [key: string, shape: number[], dtype: string];
type ModelOptions = NonNullable<Parameters<typeof getModel>[1]>;

function readJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath('parity', ...parts), 'utf8')) as T;
}

const manifest = readJson<Manifest>('manifest.json');
const keys = readJson<Record<string, KeyRow[]>>('keys.json');
const zeroInit = readJson<Record<string, string[]>>('zero_init_residual.json');
const samples = readJson<{ samples: FillSample[] }>('fill_samples.json').samples;
const evalLogits = readSafetensors(readFileSync(fixturePath('parity', 'eval_logits.safetensors')));
const trainFixture = readSafetensors(readFileSync(fixturePath('parity', manifest.train.file)));
const REL_TOL = manifest.relTol; // 1e-4 of the largest |torch output|, on every backend

/** Every compute backend (RESNET_TEST_BACKENDS=ref,native narrows the list). */
const BACKENDS = listBackends().filter(
  (b) => b !== 'meta' && (!process.env.RESNET_TEST_BACKENDS || process.env.RESNET_TEST_BACKENDS.split(',').includes(b)),
);

/** torchvision's keyword arguments -> ours. */
const OPTION_NAMES: Record<string, keyof ModelOptions> = {
  num_classes: 'numClasses',
  zero_init_residual: 'zeroInitResidual',
  groups: 'groups',
  width_per_group: 'widthPerGroup',
  replace_stride_with_dilation: 'replaceStrideWithDilation',
};

function modelOptions(torchOptions: Record<string, unknown>): ModelOptions {
  const options: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(torchOptions)) {
    const ours = OPTION_NAMES[name];
    if (ours === undefined) throw new Error(`no mapping for torchvision option ${name}`);
    options[ours] = value;
  }
  return options as ModelOptions;
}

function build(c: ParityCase): AnyResNet {
  if (c.builder !== undefined) return getModel(c.builder, modelOptions(c.options));
  assert.equal(c.block, 'Bottleneck', `${c.name}: unknown block ${c.block}`);
  return new ResNet(Bottleneck, c.layers!, modelOptions(c.options));
}

function stateDictRows(model: AnyResNet): KeyRow[] {
  return [...model.stateDict()].map(([key, t]) => [key, [...t.shape], t.dtype]);
}


function fixture(tensors: Map<string, Tensor>, key: string): Tensor {
  const t = tensors.get(key);
  assert.ok(t, `fixture tensor ${key} missing`);
  return t;
}

test('the fill formula reproduces make_parity.py bit for bit', () => {
  for (const s of samples) {
    assert.equal(fnv1a32(s.key), s.fnv1a32, `fnv1a32(${s.key})`);
    const t = s.key.startsWith('input/') ? deterministicInput(s.shape) : deterministicTensor(s.key, s.shape);
    assert.equal(t.dtype, s.dtype, `${s.key}: dtype`);
    assert.deepEqual(t.shape, s.shape, `${s.key}: shape`);
    s.indices.forEach((index, j) => {
      const expected = s.dtype === 'int64' ? BigInt(s.values[j]!) : Math.fround(s.values[j]!);
      assert.equal(t.data[index], expected, `${s.key}[${index}]`);
    });
  }
});

test('listModels names the builders torchvision has, in its order', () => {
  const builders = [...new Set(manifest.cases.flatMap((c) => (c.builder !== undefined && c.name === c.builder ? [c.builder] : [])))];
  assert.deepEqual(listModels('imagenet'), builders);
});

for (const [name, rows] of Object.entries(keys)) {
  test(`state-dict keys, shapes and dtypes of ${name} equal torchvision's, in order`, () => {
    const c = manifest.cases.find((k) => k.name === name);
    assert.ok(c, `no case named ${name} in manifest.json`);
    assert.deepEqual(stateDictRows(uninitialised(() => build(c))), rows);
  });
}

// One test per case, so a failure names the builder, options and input; a subtest per backend.
for (const c of manifest.cases) {
  test(`eval logits of ${c.fixture} ${JSON.stringify(c.options)} match torch`, async (t) => {
    // The test runner keeps every subtest's function, and with it what the function can reach:
    // the model is dropped at the end, or every case's weights would stay alive to the end.
    let model: AnyResNet | null = filledModel(() => build(c)).eval().requiresGrad_(false); // frozen: the eval plan runs
    const input = deterministicInput(c.input);
    try {
      for (const backend of BACKENDS) {
        await t.test(backend, () => {
          const logits = withBackend(backend, () => model!.forward(input));
          assertCloseToReference(logits, fixture(evalLogits, c.fixture), REL_TOL, `${c.fixture} logits on ${backend}`);
        });
      }
    } finally {
      model = null;
    }
  });
}

for (const backend of BACKENDS) {
  test(`${backend}: train-mode ${manifest.train.builder}: logits and every BatchNorm buffer after one forward match torch`, () => {
    withBackend(backend, () => checkTrainMode());
  });
}

function checkTrainMode(): void {
  const model = filledModel(() => getModel(manifest.train.builder));
  model.train();
  const logits = model.forward(deterministicInput(manifest.train.input));
  assertCloseToReference(logits, fixture(trainFixture, 'logits'), REL_TOL, 'train logits');

  const state = model.stateDict();
  const bufferKeys = [...state.keys()].filter((k) => /(running_mean|running_var|num_batches_tracked)$/.test(k));
  assert.deepEqual([...bufferKeys].sort(), [...trainFixture.keys()].filter((k) => k !== 'logits').sort());
  for (const key of bufferKeys) {
    const ours = state.get(key)!;
    const torch = fixture(trainFixture, key);
    if (key.endsWith('num_batches_tracked')) {
      assert.equal(ours.dtype, 'int64', `${key}: dtype`);
      assert.equal(ours.data[0], torch.data[0], `${key}`);
      assert.equal(ours.data[0], 1n, `${key} after one forward`);
    } else {
      // momentum 0.1 towards the batch mean and the unbiased batch variance
      assertCloseToReference(ours, torch, REL_TOL, key);
    }
  }
}

for (const [builder, torchZeroKeys] of Object.entries(zeroInit)) {
  test(`zeroInitResidual ${builder}: the all-zero state-dict entries are torch's`, () => {
    const model = getModel(builder, { zeroInitResidual: true, seed: 0 });
    const zeroKeys = [...model.stateDict()].filter(([, t]) => t.data.every((v) => v === 0 || v === 0n)).map(([key]) => key);
    assert.deepEqual(zeroKeys.sort(), [...torchZeroKeys].sort());
  });
}
