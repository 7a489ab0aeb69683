// Eval-mode inference from a trace (ops/trace.ts), the way TorchScript freezing or onnxruntime's
// graph optimiser treat a model: the module tree is traced once per input shape, then
//   - BatchNorm in eval mode is folded into the convolution before it (fold.ts),
//   - the residual add and the ReLU after a convolution go into its epilogue (ConvEpilogue),
//   - each activation is released to the backend after its last use (liveness), so the next
//     op of that size gets the same memory back: after the first pass a forward allocates no
//     activation memory (the native backend recycles released arrays, wasm its heap blocks).
// A value that a forward hook sees (a hooked module's input or output) is computed as itself,
// never fused away, never released: the hook gets a tensor it may keep. Everything else of the
// pass is the plan's own.

import type { Tensor } from '../core/tensor.js';
import type { ConvEpilogue } from '../backends/index.js';
import * as F from '../ops/functional.js';
import type { BatchNormArgs, Trace, TracedOp } from '../ops/trace.js';
import { foldable, foldBatchNorm } from './fold.js';

/** An input of a step: a value of the pass by its slot, or a constant (a weight, a tensor made outside the pass). */
type Operand = number | Tensor;

/** One op to run: its inputs, the slot it writes, and the slots whose last use it is. */
interface OpStep {
  kind: 'op';
  /** What it computes, for tests and explanations: 'conv2d+bn+add+relu', 'maxPool2d', … */
  name: string;
  inputs: Operand[];
  output: number;
  run: (inputs: Tensor[]) => Tensor;
  release: number[];
}

/** A hooked module's call ending: its hooks see these two values. */
interface HookStep {
  kind: 'hook';
  scope: object;
  input: Operand;
  output: Operand;
  release: number[];
}

type Step = OpStep | HookStep;

/** Called at a hooked module's exit, in the order the plain forward would call it. */
export type ExitHandler = (scope: object, input: Tensor, output: Tensor) => void;

/** A node of the op graph while it is being fused: the traced op and what it absorbed. */
interface Node {
  op: TracedOp;
  /** BatchNorm folded into this convolution. */
  bn: BatchNormArgs | null;
  /** Residual added in this convolution's epilogue. */
  residual: Tensor | null;
  relu: boolean;
  /** The value this node finally produces (the last absorbed op's output). */
  output: Tensor;
  /** Index in the trace of the last op absorbed: where the fused op runs. */
  at: number;
  absorbed: boolean;
}

function opInputs(op: TracedOp): Tensor[] {
  switch (op.kind) {
    case 'add':
      return [op.a, op.b];
    case 'conv2d':
      return op.epilogue?.residual ? [op.x, op.epilogue.residual] : [op.x];
    default:
      return [op.x];
  }
}

export class Plan {
  readonly inputShape: readonly number[];
  readonly #steps: Step[];
  readonly #slots: number;
  readonly #output: Operand;
  #running = false;

  /** Builds the plan of a traced eval-mode pass (every BatchNorm in it with training false). */
  constructor(trace: Trace) {
    this.inputShape = trace.input.shape;
    const { events } = trace;

    // Slots: 0 is the input, then one per op output. Aliases (flatten) share their root's memory.
    const slot = new Map<Tensor, number>([[trace.input, 0]]);
    const root: number[] = [0];
    const operand = (t: Tensor): Operand => {
      const s = slot.get(t);
      if (s !== undefined) return s;
      if (t.isMeta) throw new Error(`plan: the traced forward pass used a tensor ${t} that it did not compute`);
      return t; // a constant: a parameter, or a tensor the forward made without an op
    };

    // Who reads each value, and which values hooks see (those are never fused away or released).
    const readers = new Map<Tensor, number>();
    const observed = new Set<Tensor>();
    const read = (t: Tensor): void => void readers.set(t, (readers.get(t) ?? 0) + 1);
    for (const e of events) {
      if (e.kind === 'enter') continue;
      if (e.kind === 'exit') {
        if (e.hooked) observed.add(e.input).add(e.output);
        continue;
      }
      for (const t of opInputs(e)) read(t);
    }
    read(trace.output);
    observed.add(trace.output);

    // Fusion: conv → BN (eval) → add (the other operand as residual) → ReLU, each link only where
    // the value between is read once, by the next op, and seen by no hook.
    const nodes: (Node | null)[] = events.map((e, at) =>
      e.kind === 'enter' || e.kind === 'exit' ? null : { op: e, bn: null, residual: null, relu: false, output: e.output, at, absorbed: false },
    );
    const readerOf = new Map<Tensor, Node>();
    for (const n of nodes) if (n) for (const t of opInputs(n.op)) readerOf.set(t, n);
    const readOnceUnseen = (t: Tensor): boolean => readers.get(t) === 1 && !observed.has(t);
    for (const n of nodes) {
      if (!n || n.absorbed || n.op.kind !== 'conv2d' || n.op.epilogue) continue;
      const next = (): Node | undefined => {
        const reader = readOnceUnseen(n.output) ? readerOf.get(n.output) : undefined;
        return reader?.absorbed ? undefined : reader; // an add another convolution has taken
      };
      let m = next();
      if (m?.op.kind === 'batchNorm2d' && foldable(m.op.args)) {
        n.bn = m.op.args;
        absorb(n, m);
        m = next();
      }
      if (m?.op.kind === 'add' && m.op.a !== m.op.b) {
        n.residual = m.op.a === n.output ? m.op.b : m.op.a;
        absorb(n, m);
        m = next();
      }
      if (m?.op.kind === 'relu') {
        n.relu = true;
        absorb(n, m);
      }
    }

    // Steps in trace order; a fused convolution runs where the last op it absorbed ran (its
    // residual is computed by then: torchvision's BasicBlock runs the downsample after bn2).
    const fusedAt = new Map<number, Node>();
    for (const n of nodes) if (n && !n.absorbed) fusedAt.set(n.at, n);
    const steps: Step[] = [];
    events.forEach((e, i) => {
      if (e.kind === 'exit' && e.hooked) {
        steps.push({ kind: 'hook', scope: e.scope, input: operand(e.input), output: operand(e.output), release: [] });
        return;
      }
      const n = fusedAt.get(i);
      if (!n) return;
      const inputs = opInputs(n.op).map(operand);
      if (n.residual) inputs.push(operand(n.residual));
      const output = root.length;
      slot.set(n.output, output);
      root.push(n.op.kind === 'flatten' && typeof inputs[0] === 'number' ? root[inputs[0]] : output);
      steps.push({ kind: 'op', name: stepName(n), inputs, output, run: runner(n), release: [] });
    });

    // Liveness: a value's memory goes back to the backend after the last step that reads it or
    // an alias of it, unless a hook saw it, the pass returns it, or it is the caller's input.
    const kept = new Set<number>([0]);
    for (const t of observed) {
      const s = slot.get(t);
      if (s !== undefined) kept.add(root[s]);
    }
    const lastUse = new Map<number, number>();
    steps.forEach((step, i) => {
      const used = step.kind === 'op' ? [...step.inputs, step.output] : [step.input, step.output];
      for (const u of used) if (typeof u === 'number') lastUse.set(root[u], i);
    });
    for (const [r, i] of lastUse) if (!kept.has(r)) steps[i].release.push(r);

    this.#steps = steps;
    this.#slots = root.length;
    this.#output = operand(trace.output);
  }

  /** The ops the plan runs, by what each computes ('conv2d+bn+add+relu', 'hook', …). */
  describe(): string[] {
    return this.#steps.map((s) => (s.kind === 'op' ? s.name : 'hook'));
  }

  /**
   * Runs the plan on x (of the traced shape; the caller has checked). onExit runs a hooked
   * module's hooks when its call ends; a hook that throws stops the pass there.
   */
  run(x: Tensor, onExit: ExitHandler): Tensor {
    // A hook that runs this same module again would reuse memory this pass still reads.
    if (this.#running) throw new Error('plan: a forward hook ran the module again during its own forward pass');
    this.#running = true;
    const slots: Tensor[] = new Array(this.#slots);
    slots[0] = x;
    const value = (o: Operand): Tensor => (typeof o === 'number' ? slots[o] : o);
    try {
      for (const step of this.#steps) {
        if (step.kind === 'op') slots[step.output] = step.run(step.inputs.map(value));
        else onExit(step.scope, value(step.input), value(step.output));
        for (const s of step.release) F.release(slots[s]);
      }
      return value(this.#output);
    } finally {
      this.#running = false;
    }
  }
}

function absorb(into: Node, node: Node): void {
  node.absorbed = true;
  into.output = node.output;
  into.at = node.at;
}

function stepName(n: Node): string {
  return [n.op.kind, ...(n.bn ? ['bn'] : []), ...(n.residual ? ['add'] : []), ...(n.relu ? ['relu'] : [])].join('+');
}

/** The op of a node, on run-time tensors in the order of its inputs (residual last). */
function runner(n: Node): (inputs: Tensor[]) => Tensor {
  const op = n.op;
  switch (op.kind) {
    case 'conv2d': {
      const { weight, bias, params } = op;
      const { bn, relu } = n;
      if (op.epilogue) {
        const epilogue: ConvEpilogue = op.epilogue;
        return ([x, residual]) => F.conv2d(x, weight, bias, params, { ...epilogue, residual: residual ?? null });
      }
      return ([x, residual]) => {
        // Folded on every run, from a cache keyed by the BN tensors' versions (fold.ts).
        const folded = bn ? foldBatchNorm(weight, bias, bn) : null;
        return F.conv2d(x, weight, folded ? folded.bias : bias, params, { scale: folded?.scale ?? null, residual: residual ?? null, relu });
      };
    }
    case 'batchNorm2d':
      return ([x]) => F.batchNorm2d(x, op.args);
    case 'relu':
      return ([x]) => F.relu(x);
    case 'add':
      return ([a, b]) => F.add(a, b);
    case 'maxPool2d':
      return ([x]) => F.maxPool2d(x, op.params);
    case 'adaptiveAvgPool2d':
      return ([x]) => F.adaptiveAvgPool2d(x, op.outputSize);
    case 'flatten':
      return ([x]) => F.flatten(x, op.startDim);
    case 'linear':
      return ([x]) => F.linear(x, op.weight, op.bias);
    case 'subsamplePadChannels':
      return ([x]) => F.subsamplePadChannels(x, op.stride, op.before, op.after);
  }
}
