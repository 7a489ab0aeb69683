// The tape: while a forward pass is traced, every op of functional.ts records what it computed
// (its tensor arguments, its other arguments, its output) and every module call records where
// it begins and ends. The pass runs on data-less meta tensors, so a trace of ResNet-50 costs
// about a millisecond; its meta tensors stand for the values of the pass (one object each).
// The inference plan (src/plan) and the summary read traces.

import { Tensor, type Shape } from '../core/tensor.js';
import { withBackend, type Conv2dParams, type ConvEpilogue, type Pool2dParams } from '../backends/index.js';

/** BatchNorm's arguments as functional.batchNorm2d takes them. */
export interface BatchNormArgs {
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  weight: Tensor | null;
  bias: Tensor | null;
  training: boolean;
  momentum: number;
  eps: number;
}

/** One op of the pass: its inputs (values of the pass, or constants such as weights) and its output. */
export type TracedOp =
  | { kind: 'conv2d'; x: Tensor; weight: Tensor; bias: Tensor | null; params: Conv2dParams; epilogue: ConvEpilogue | undefined; output: Tensor }
  | { kind: 'batchNorm2d'; x: Tensor; args: BatchNormArgs; output: Tensor }
  | { kind: 'relu'; x: Tensor; output: Tensor }
  | { kind: 'add'; a: Tensor; b: Tensor; output: Tensor }
  | { kind: 'maxPool2d'; x: Tensor; params: Pool2dParams; output: Tensor }
  | { kind: 'adaptiveAvgPool2d'; x: Tensor; outputSize: readonly [number, number]; output: Tensor }
  | { kind: 'flatten'; x: Tensor; startDim: number; output: Tensor }
  | { kind: 'linear'; x: Tensor; weight: Tensor; bias: Tensor | null; output: Tensor }
  | { kind: 'subsamplePadChannels'; x: Tensor; stride: number; before: number; after: number; output: Tensor };

/**
 * A module call: `enter` before its forward, `exit` after, with its input and output. `scope`
 * is the module (opaque here); `hooked` says whether forward hooks will want to see this call.
 */
export type ScopeEvent =
  | { kind: 'enter'; scope: object; input: Tensor }
  | { kind: 'exit'; scope: object; hooked: boolean; input: Tensor; output: Tensor };

export type TraceEvent = TracedOp | ScopeEvent;

export interface Trace {
  /** The meta tensor the pass started from. */
  input: Tensor;
  /** Ops and module calls in the order they ran. */
  events: TraceEvent[];
  /** What the pass returned. */
  output: Tensor;
}

let tape: TraceEvent[] | null = null;

/** Whether a trace is being recorded (modules then run their plain forward and no hooks). */
export function isTracing(): boolean {
  return tape !== null;
}

/** Appends an op to the tape being recorded, if any; returns the op's output. */
export function recordOp(op: TracedOp): Tensor {
  tape?.push(op);
  return op.output;
}

/** Appends a module call's beginning or end to the tape being recorded, if any. */
export function recordScope(event: ScopeEvent): void {
  tape?.push(event);
}

/**
 * Runs `pass` on a meta tensor of `inputShape` with the meta backend, recording the tape. Shape
 * errors of the pass are thrown as the ops throw them, before any data is touched.
 */
export function trace(inputShape: Shape, pass: (x: Tensor) => Tensor): Trace {
  if (tape) throw new Error('trace: already tracing (a traced forward pass started another trace)');
  const input = Tensor.meta(inputShape);
  const events: TraceEvent[] = [];
  tape = events;
  try {
    const output = withBackend('meta', () => pass(input));
    return { input, events, output };
  } finally {
    tape = null;
  }
}
