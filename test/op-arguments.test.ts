// Bad arguments and empty batches, one test body over every registered compute backend (ref,
// wasm, native where built). The ops layer checks arguments before any backend runs, so each
// bad call must fail with the same error class and message everywhere (before the checks moved
// there, stride 0 gave three different RangeErrors and a fractional stride trapped the wasm
// module). Batches of 0 flow through as torch's do: resnet18 on [0, 3, 64, 64] gives [0, 1000]
// (torch 1.13: `torchvision.models.resnet18().eval()(torch.zeros(0, 3, 64, 64)).shape`), and a
// training BatchNorm on no values returns them and leaves its running statistics alone (torch:
// running_mean 5 stays 5, running_var 2 stays 2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../src/core/tensor.js';
import { listBackends, withBackend } from '../src/backends/index.js';
import * as F from '../src/ops/functional.js';
import { BatchNorm2d, Conv2d, MaxPool2d } from '../src/nn/layers.js';
import { getModel } from '../src/models/builders.js';
import type { Conv2dParams, Pool2dParams } from '../src/backends/index.js';

const BACKENDS = listBackends().filter((b) => b !== 'meta');

const conv = (over: Partial<Conv2dParams>): Conv2dParams => ({ stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1, ...over });
const pool = (over: Partial<Pool2dParams>): Pool2dParams => ({ kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ...over });

const x = Tensor.full([1, 4, 8, 8], 0.5);
const w = Tensor.full([6, 4, 3, 3], 0.1);

/** Each call with bad arguments, and the message every backend must fail with. */
const BAD_CALLS: [string, () => Tensor, RegExp][] = [
  ['conv2d stride 0', () => F.conv2d(x, w, null, conv({ stride: [0, 1] })), /^conv2d: stride must be positive integers, got 0×1$/],
  ['conv2d fractional stride', () => F.conv2d(x, w, null, conv({ stride: [1.5, 1] })), /^conv2d: stride must be positive integers, got 1\.5×1$/],
  ['conv2d NaN stride', () => F.conv2d(x, w, null, conv({ stride: [1, NaN] })), /stride must be positive integers/],
  ['conv2d negative padding', () => F.conv2d(x, w, null, conv({ padding: [-1, 0] })), /^conv2d: padding must be non-negative integers, got -1×0$/],
  ['conv2d dilation 0', () => F.conv2d(x, w, null, conv({ dilation: [1, 0] })), /^conv2d: dilation must be positive integers, got 1×0$/],
  ['conv2d kernel size 0', () => F.conv2d(x, Tensor.zeros([6, 4, 0, 3]), null, conv({})), /^conv2d: kernel size must be positive integers, got 0×3$/],
  ['conv2d groups 0', () => F.conv2d(x, w, null, conv({ groups: 0 })), /^conv2d: groups must be a positive integer, got 0$/],
  ['conv2d groups 1.5', () => F.conv2d(x, w, null, conv({ groups: 1.5 })), /groups must be a positive integer/],
  ['conv2d 3-D weight', () => F.conv2d(x, Tensor.zeros([6, 4, 3]), null, conv({})), /4-D \(O, C\/groups, kh, kw\) weight/],
  ['conv2d output channels not divisible by groups', () => F.conv2d(x, Tensor.zeros([3, 2, 3, 3]), null, conv({ groups: 2 })), /does not split into 2 groups/],
  ['max_pool2d kernel 0', () => F.maxPool2d(x, pool({ kernel: [0, 0], padding: [0, 0] })), /^max_pool2d: kernel size must be positive integers, got 0×0$/],
  ['max_pool2d stride 0', () => F.maxPool2d(x, pool({ stride: [0, 0] })), /^max_pool2d: stride must be positive integers, got 0×0$/],
  ['max_pool2d fractional stride', () => F.maxPool2d(x, pool({ stride: [2, 0.5] })), /stride must be positive integers, got 2×0\.5/],
  ['max_pool2d negative padding', () => F.maxPool2d(x, pool({ padding: [0, -1] })), /^max_pool2d: padding must be non-negative integers, got 0×-1$/],
  ['max_pool2d dilation 0', () => F.maxPool2d(x, pool({ dilation: [0, 1] })), /^max_pool2d: dilation must be positive integers, got 0×1$/],
  ['adaptive_avg_pool2d output 0', () => F.adaptiveAvgPool2d(x, [0, 1]), /^adaptive_avg_pool2d: output size must be positive integers, got 0×1$/],
  ['adaptive_avg_pool2d fractional output', () => F.adaptiveAvgPool2d(x, [1.5, 1]), /output size must be positive integers/],
  ['linear 1-D weight', () => F.linear(Tensor.zeros([2, 4]), Tensor.zeros([4]), null), /2-D \(out, in\) weight/],
  ['flatten start dimension out of range', () => F.flatten(x, 4), /^flatten: start dimension 4 is out of range for shape \[1, 4, 8, 8\]$/],
];

/** The error `call` throws, as "Class: message"; fails the test if it returns. */
function failure(call: () => Tensor, what: string): { error: Error; text: string } {
  try {
    const y = call();
    assert.fail(`${what}: returned a tensor of shape [${y.shape.join(', ')}] instead of failing`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    const e = error as Error;
    return { error: e, text: `${e.constructor.name}: ${e.message}` };
  }
}

for (const [what, call, message] of BAD_CALLS) {
  test(`${what}: the same RangeError on every backend (${BACKENDS.join(', ')})`, () => {
    const seen = BACKENDS.map((backend) => ({ backend, ...withBackend(backend, () => failure(call, `${what} on ${backend}`)) }));
    for (const { backend, error, text } of seen) {
      assert.ok(error instanceof RangeError, `${what} on ${backend}: ${text} is not a RangeError`);
      assert.match(error.message, message, `${what} on ${backend}`);
      assert.equal(text, seen[0].text, `${what}: ${backend} and ${seen[0].backend} fail differently`);
    }
  });
}

test('layers check their window arguments when built, with the ops\' messages', () => {
  assert.throws(() => new Conv2d(3, 4, 3, { padding: -1 }), { name: 'RangeError', message: 'Conv2d: padding must be non-negative integers, got -1×-1' });
  assert.throws(() => new Conv2d(3, 4, 3, { stride: 0 }), { message: 'Conv2d: stride must be positive integers, got 0×0' });
  assert.throws(() => new Conv2d(3, 4, [0, 3]), { name: 'ShapeError', message: 'Conv2d: kernel size must be positive integers, got 0×3' });
  assert.throws(() => new MaxPool2d(3, { stride: 0 }), { message: 'MaxPool2d: stride must be positive integers, got 0×0' });
  assert.throws(() => new MaxPool2d(3, { dilation: 0.5 }), { message: 'MaxPool2d: dilation must be positive integers, got 0.5×0.5' });
});

for (const backend of BACKENDS) {
  test(`${backend}: a batch of 0 flows through every op and resnet18 gives [0, 1000]`, () => {
    withBackend(backend, () => {
      const empty = Tensor.zeros([0, 4, 8, 8]);
      assert.deepEqual(F.conv2d(empty, w, null, conv({ stride: [2, 2] })).shape, [0, 6, 4, 4]);
      assert.deepEqual(F.maxPool2d(empty, pool({})).shape, [0, 4, 4, 4]);
      assert.deepEqual(F.adaptiveAvgPool2d(empty, [1, 1]).shape, [0, 4, 1, 1]);
      assert.deepEqual(F.relu(empty).shape, [0, 4, 8, 8]);
      assert.deepEqual(F.add(empty, empty).shape, [0, 4, 8, 8]);
      assert.deepEqual(F.flatten(empty, 1).shape, [0, 256]);
      assert.deepEqual(F.linear(Tensor.zeros([0, 4]), Tensor.zeros([3, 4]), Tensor.zeros([3])).shape, [0, 3]);

      const bn = new BatchNorm2d(4);
      bn.runningMean!.fill_(5);
      bn.runningVar!.fill_(2);
      assert.deepEqual(bn.call(empty).shape, [0, 4, 8, 8], 'training BatchNorm');
      assert.deepEqual([...bn.runningMean!.f32, ...bn.runningVar!.f32], [5, 5, 5, 5, 2, 2, 2, 2], 'running statistics untouched');
      assert.equal(bn.numBatchesTracked!.item(), 1);
      bn.eval();
      assert.deepEqual(bn.call(empty).shape, [0, 4, 8, 8], 'eval BatchNorm');

      const model = getModel('resnet18', { seed: 3 });
      assert.deepEqual(model.call(Tensor.zeros([0, 3, 64, 64])).shape, [0, 1000], 'training mode');
      model.eval();
      assert.deepEqual(model.call(Tensor.zeros([0, 3, 64, 64])).shape, [0, 1000], 'eval mode (fused blocks)');
      // And a real batch still works after the empty one.
      const y = model.call(Tensor.full([1, 3, 64, 64], 0.25));
      assert.deepEqual(y.shape, [1, 1000]);
      assert.ok(y.f32.every(Number.isFinite));
    });
  });
}

test('Tensor.reshape infers -1 as torch does, and refuses what torch refuses', () => {
  // torch 1.13: torch.zeros(0, 3).reshape(-1) → (0,), .reshape(-1, 3) → (0, 3), .reshape(3, -1) →
  // (3, 0); .reshape(0, -1) raises "… the unspecified dimension size -1 can be any value and is
  // ambiguous"; torch.zeros(10).reshape(3, -1) raises; two -1s raise "only one dimension can be inferred".
  const empty = Tensor.zeros([0, 3]);
  assert.deepEqual(empty.reshape([-1]).shape, [0]);
  assert.deepEqual(empty.reshape([-1, 3]).shape, [0, 3]);
  assert.deepEqual(empty.reshape([3, -1]).shape, [3, 0]);
  assert.throws(() => empty.reshape([0, -1]), /-1 can be any value and is ambiguous/);
  const ten = Tensor.zeros([10]);
  assert.throws(() => ten.reshape([3, -1]), /cannot reshape tensor of shape \[10\] to \[3, -1\]/);
  assert.throws(() => ten.reshape([-1, -1]), /only one dimension can be inferred/);
  assert.throws(() => ten.reshape([-2, -5]), /invalid dimension -2/);
  assert.throws(() => ten.reshape([2.5, 4]), /invalid dimension 2\.5/);
  assert.deepEqual(ten.reshape([2, -1]).shape, [2, 5]);
});
