// Each backward kernel against torch's gradients on the edge cases of
// test/fixtures/grad-ops/make_grad_ops.py, on every registered compute backend (a backend without
// a kernel runs the reference's, as the ops layer does). Tolerance: max|ours - torch| <=
// 1e-5 * max|torch| per gradient: float32 sums of at most a few hundred terms, in another order
// than torch's, part by a few ulps of the largest term.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../src/core/tensor.js';
import { getBackend, listBackends, referenceBackwardKernels as reference, withBackend, type Backend, type BackwardKernels, type Conv2dParams, type Pool2dParams } from '../src/backends/index.js';
import { createReferenceBackend } from '../src/backends/ref/kernels.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { assertCloseToReference } from './helpers/compare.js';
import { fixturePath } from './helpers/paths.js';

interface GradCase {
  op: string;
  [arg: string]: unknown;
}

const manifest = JSON.parse(readFileSync(fixturePath('grad-ops', 'grad_ops.json'), 'utf8')) as { cases: Record<string, GradCase> };
const tensors = readSafetensors(readFileSync(fixturePath('grad-ops', 'grad_ops.safetensors')));
const TOLERANCE = 1e-5;

function get(name: string, key: string): Tensor {
  const t = tensors.get(`${name}/${key}`);
  assert.ok(t, `fixture ${name}/${key} missing`);
  return t.clone();
}

type Pair = [number, number];

/** The backend's backward kernels, the reference's where it has none (as the ops layer falls back). */
function backwardKernels(backend: Backend): BackwardKernels {
  const kernels = { ...reference };
  for (const key of Object.keys(reference) as (keyof BackwardKernels)[]) {
    const own = backend[key] as ((...args: unknown[]) => unknown) | undefined;
    if (own) (kernels as Record<string, unknown>)[key] = own.bind(backend);
  }
  return kernels;
}

/** The gradients a case's kernels compute, by the fixture key of torch's gradient. */
function gradients(backend: Backend, name: string, c: GradCase): [string, Tensor][] {
  const k = backwardKernels(backend);
  switch (c.op) {
    case 'conv2d': {
      const x = get(name, 'x');
      const weight = get(name, 'weight');
      const dy = get(name, 'dy');
      const p: Conv2dParams = { stride: c.stride as Pair, padding: c.padding as Pair, dilation: c.dilation as Pair, groups: c.groups as number };
      const grads: [string, Tensor][] = [
        ['dx', k.conv2dBackwardInput(dy, weight, p, x.shape[2], x.shape[3])],
        ['dweight', k.conv2dBackwardWeight(x, dy, p, weight.shape[2], weight.shape[3])],
      ];
      if (tensors.has(`${name}/dbias`)) grads.push(['dbias', Tensor.from(k.channelSums(dy))]);
      return grads;
    }
    case 'max_pool2d': {
      const p: Pool2dParams = { kernel: c.kernel as Pair, stride: c.stride as Pair, padding: c.padding as Pair, dilation: c.dilation as Pair };
      return [['dx', k.maxPool2dBackward(get(name, 'x'), get(name, 'dy'), p)]];
    }
    case 'adaptive_avg_pool2d': {
      const x = get(name, 'x');
      return [['dx', k.adaptiveAvgPool2dBackward(get(name, 'dy'), x.shape[2], x.shape[3])]];
    }
    case 'batch_norm': {
      const x = get(name, 'x');
      // The forward's batch statistics, as the ops layer computes them (float64).
      const { mean, variance } = createReferenceBackend().channelMoments(x);
      const invStd = variance.map((v) => 1 / Math.sqrt(v + (c.eps as number)));
      const gamma = c.affine ? get(name, 'weight').f32 : null;
      const { dx, dGamma, dBeta } = k.batchNormBackward(x, get(name, 'dy'), mean, invStd, gamma);
      return c.affine ? [['dx', dx], ['dweight', Tensor.from(dGamma)], ['dbias', Tensor.from(dBeta)]] : [['dx', dx]];
    }
    case 'relu':
      return [['dx', k.reluBackward(get(name, 'y'), get(name, 'dy'))]];
    case 'matmul':
      return [['c', k.matmul(get(name, 'a'), get(name, 'b'), c.trans_a as boolean, c.trans_b as boolean)]];
    case 'linear': {
      const x = get(name, 'x');
      const dy = get(name, 'dy');
      return [
        ['dx', k.matmul(dy, get(name, 'weight'), false, false)],
        ['dweight', k.matmul(dy, x, true, false)],
        ['dbias', Tensor.from(k.channelSums(dy))],
      ];
    }
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

for (const name of listBackends().filter((b) => b !== 'meta')) {
  const backend = withBackend(name, getBackend);
  for (const [caseName, c] of Object.entries(manifest.cases)) {
    test(`${name}: ${caseName}`, () => {
      for (const [key, grad] of gradients(backend, caseName, c)) {
        assertCloseToReference(grad, get(caseName, key), TOLERANCE, `${caseName} ${key}`);
      }
    });
  }
}

