// Each op against torch on the edge cases of test/fixtures/ops/make_ops.py, run on every
// registered compute backend. Tolerance: max|ours - torch| <= 1e-5 * max(1, max|torch|).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../src/core/tensor.js';
import { listBackends, withBackend } from '../src/backends/index.js';
import * as F from '../src/ops/functional.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { fixturePath } from './helpers/paths.js';

interface OpCase {
  op: string;
  [arg: string]: unknown;
}

const manifest = JSON.parse(readFileSync(fixturePath('ops', 'ops.json'), 'utf8')) as { cases: Record<string, OpCase> };
const tensors = readSafetensors(readFileSync(fixturePath('ops', 'ops.safetensors')));
const TOLERANCE = 1e-5;

function get(name: string, key: string): Tensor {
  const t = tensors.get(`${name}/${key}`);
  assert.ok(t, `fixture ${name}/${key} missing`);
  return t.clone();
}

function assertClose(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.f32;
  const e = expected.f32;
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < e.length; i++) {
    scale = Math.max(scale, Math.abs(e[i]));
    worst = Math.max(worst, Math.abs(a[i] - e[i]));
  }
  assert.ok(worst <= TOLERANCE * scale, `${what}: max abs difference ${worst} exceeds ${TOLERANCE * scale}`);
}

type Pair = [number, number];

function run(name: string, c: OpCase): { y: Tensor; extra?: [string, Tensor][] } {
  switch (c.op) {
    case 'conv2d':
      return {
        y: F.conv2d(get(name, 'x'), get(name, 'weight'), tensors.has(`${name}/bias`) ? get(name, 'bias') : null, {
          stride: c.stride as Pair,
          padding: c.padding as Pair,
          dilation: c.dilation as Pair,
          groups: c.groups as number,
        }),
      };
    case 'max_pool2d':
      return {
        y: F.maxPool2d(get(name, 'x'), {
          kernel: c.kernel as Pair,
          stride: c.stride as Pair,
          padding: c.padding as Pair,
          dilation: c.dilation as Pair,
        }),
      };
    case 'adaptive_avg_pool2d':
      return { y: F.adaptiveAvgPool2d(get(name, 'x'), c.output_size as Pair) };
    case 'linear':
      return { y: F.linear(get(name, 'x'), get(name, 'weight'), get(name, 'bias')) };
    case 'batch_norm': {
      const runningMean = get(name, 'running_mean');
      const runningVar = get(name, 'running_var');
      const y = F.batchNorm2d(get(name, 'x'), {
        runningMean,
        runningVar,
        weight: get(name, 'weight'),
        bias: get(name, 'bias'),
        training: c.training as boolean,
        momentum: c.momentum as number,
        eps: c.eps as number,
      });
      return { y, extra: [['new_running_mean', runningMean], ['new_running_var', runningVar]] };
    }
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

for (const backend of listBackends().filter((b) => b !== 'meta')) {
  for (const [name, c] of Object.entries(manifest.cases)) {
    test(`${backend}: ${name}`, () => {
      withBackend(backend, () => {
        const { y, extra } = run(name, c);
        assertClose(y, get(name, 'y'), name);
        for (const [key, t] of extra ?? []) assertClose(t, get(name, key), `${name} ${key}`);
      });
    });
  }
}

test('max pool: padded positions never win, even when every input is negative', () => {
  const x = Tensor.full([1, 1, 2, 2], -5);
  const y = F.maxPool2d(x, { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] });
  assert.deepEqual([...y.f32], [-5]);
});

test('shape errors name the problem', () => {
  const w = Tensor.zeros([4, 3, 3, 3]);
  assert.throws(() => F.conv2d(Tensor.zeros([1, 4, 8, 8]), w, null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }), /expected input \[1, 4, 8, 8\] to have 3 channels, but got 4/);
  assert.throws(() => F.conv2d(Tensor.zeros([1, 3, 2, 2]), w, null, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }), /too small/);
  assert.throws(() => F.conv2d(Tensor.zeros([3, 8, 8]), w, null, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }), /4-D/);
  assert.throws(() => F.add(Tensor.zeros([1, 2]), Tensor.zeros([2, 1])), /differ/);
  assert.throws(() => F.linear(Tensor.zeros([1, 5]), Tensor.zeros([2, 4]), null), /5 features/);
  assert.throws(
    () => F.batchNorm2d(Tensor.zeros([1, 2, 1, 1]), { runningMean: null, runningVar: null, weight: null, bias: null, training: true, momentum: 0.1, eps: 1e-5 }),
    /more than 1 value per channel/,
  );
});
