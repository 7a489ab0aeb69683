// Compares our tensors with reference tensors (torch's, from fixtures) under a tolerance relative
// to the reference's largest magnitude, and says where the worst element is when they differ.

import assert from 'node:assert/strict';
import { Tensor, shapeToString, shapesEqual, type Shape } from '../../src/core/tensor.js';

/** Flat C-order index -> multi-index, e.g. 1003 in [2, 1000] -> [1, 3]. */
function unravel(flat: number, shape: Shape): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return index;
}

interface Worst {
  diff: number; // NaN in either tensor counts as an infinite difference
  at: number;
}

function worstElement(a: Tensor, b: Tensor): Worst {
  if (!shapesEqual(a.shape, b.shape)) {
    throw new RangeError(`shapes differ: ${shapeToString(a.shape)} vs ${shapeToString(b.shape)}`);
  }
  let worst: Worst = { diff: 0, at: -1 };
  for (let i = 0; i < a.size; i++) {
    const d = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    const diff = Number.isNaN(d) ? Infinity : d;
    if (diff > worst.diff || worst.at < 0) worst = { diff, at: i };
  }
  return worst;
}

/** max |a - b| over all elements (int64 compared as numbers); Infinity if either holds a NaN. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return worstElement(a, b).diff;
}

function maxAbs(t: Tensor): number {
  let m = 0;
  for (let i = 0; i < t.size; i++) m = Math.max(m, Math.abs(Number(t.data[i])));
  return m;
}

/** Asserts equal shapes and max |actual - expected| <= relTol * max |expected|. */
export function assertCloseToReference(actual: Tensor, expected: Tensor, relTol: number, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape ${shapeToString(actual.shape)}, expected ${shapeToString(expected.shape)}`);
  const worst = worstElement(actual, expected);
  const allowed = relTol * maxAbs(expected);
  if (worst.diff <= allowed) return;
  const at = worst.at;
  assert.fail(
    `${what}: max |actual - expected| = ${worst.diff.toExponential(3)} > ${relTol} * max|expected| = ${allowed.toExponential(3)}; ` +
      `worst at [${unravel(at, expected.shape).join(', ')}]: actual ${Number(actual.data[at])}, expected ${Number(expected.data[at])}`,
  );
}
