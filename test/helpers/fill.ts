// Fills state dicts and inputs with the deterministic formula that test/fixtures/parity/make_parity.py
// uses on the torch side, bit for bit, so parity fixtures hold outputs only and never weights.
//
//   fnv1a32(key)   32-bit FNV-1a of the key's UTF-8 bytes
//   mix32(x)       x ^= x>>>16; x *= 0x7feb352d; x ^= x>>>15; x *= 0x846ca68b; x ^= x>>>16  (mod 2^32)
//   u(key, i)      mix32((fnv1a32(key) + i) mod 2^32) / 2^32 * 2 - 1, in float64; i = flat C-order index
// and per state-dict entry (rounded once to float32 at the end):
//   4-D weight [O, I, kh, kw]  u * sqrt(3 / (I*kh*kw))     2-D weight [O, I]  u * sqrt(3 / I)
//   1-D *.weight (BN gamma)    0.5 + 0.25*u                 *.bias             0.1*u
//   running_mean               0.1*u                        running_var        1 + 0.5*u
//   num_batches_tracked        int64 0                      input [N,C,H,W]    u, key "input/NxCxHxW"

import { Tensor, numel, shapeToString } from '../../src/core/tensor.js';
import { skipInit } from '../../src/nn/init.js';
import type { Module } from '../../src/nn/module.js';

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** out[i] = fround(scale * u(key, i) + offset), with u computed in float64 as on the torch side. */
function fillUniform(key: string, out: Float32Array, scale: number, offset: number): Float32Array {
  const h = fnv1a32(key);
  for (let i = 0; i < out.length; i++) {
    const u = (mix32((h + i) >>> 0) / 4294967296) * 2 - 1;
    // Same float64 expression order as numpy: offset + scale*u (offset 0 adds exactly nothing).
    out[i] = offset + scale * u;
  }
  return out;
}

/** One state-dict entry filled by the formula; `key` picks the rule, as on the torch side. */
export function deterministicTensor(key: string, shape: readonly number[]): Tensor {
  const n = numel(shape);
  if (key.endsWith('num_batches_tracked')) return new Tensor(new BigInt64Array(n), shape);
  const out = new Float32Array(n);
  if (key.endsWith('running_mean')) fillUniform(key, out, 0.1, 0);
  else if (key.endsWith('running_var')) fillUniform(key, out, 0.5, 1);
  else if (key.endsWith('.weight') && shape.length === 4) fillUniform(key, out, Math.sqrt(3 / (shape[1] * shape[2] * shape[3])), 0);
  else if (key.endsWith('.weight') && shape.length === 2) fillUniform(key, out, Math.sqrt(3 / shape[1]), 0);
  else if (key.endsWith('.weight') && shape.length === 1) fillUniform(key, out, 0.25, 0.5);
  else if (key.endsWith('.bias')) fillUniform(key, out, 0.1, 0);
  else throw new RangeError(`no fill rule for ${key} ${shapeToString(shape)}`);
  return new Tensor(out, shape);
}

/** A whole state dict by the formula, from (key, shape) pairs such as a model's stateDict(). */
export function deterministicStateDict(entries: Iterable<readonly [string, readonly number[]]>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, shape] of entries) out.set(key, deterministicTensor(key, shape));
  return out;
}

/** u(key, i) over a tensor of `shape`, rounded to float32: inputs under keys of their own (training batches). */
export function deterministicUniform(key: string, shape: readonly number[]): Tensor {
  return new Tensor(fillUniform(key, new Float32Array(numel(shape)), 1, 0), shape);
}

/** A model input by the formula: u under the key "input/NxCxHxW". */
export function deterministicInput(shape: readonly number[]): Tensor {
  return new Tensor(fillUniform(`input/${shape.join('x')}`, new Float32Array(numel(shape)), 1, 0), shape);
}

/**
 * A model built without its random initialisation (parameters stay zero, in memory the kernel
 * has not yet touched): for a test that needs only its structure and shapes (summaries,
 * diagrams), or that replaces every tensor next (filledModel). Drawing the initialisation of
 * wide_resnet101_2's 127 M parameters costs seconds and touches 0.5 GB.
 */
export function uninitialised<M>(build: () => M): M {
  const end = skipInit();
  try {
    return build();
  } finally {
    end();
  }
}

/**
 * The model `build` makes, with every parameter and buffer filled by the formula (strict: all
 * keys must match): built uninitialised, and taking the formula's tensors as its own (assign),
 * so the weights exist once.
 */
export function filledModel<M extends Module>(build: () => M): M {
  const model = uninitialised(build);
  const shapes = [...model.stateDict()].map(([key, t]) => [key, t.shape] as const);
  model.loadStateDict(deterministicStateDict(shapes), { strict: true, assign: true });
  return model;
}
