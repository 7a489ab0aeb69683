// Reverse-mode automatic differentiation, as torch.autograd: while grad mode is on, every op of
// functional.ts whose inputs require gradients attaches a graph node to its output (record).
// The node holds the op's backward (written beside its forward in functional.ts), the inputs
// it sends gradients to, and the tensors it saved, each with the version it had when saved:
// a tensor written in place before backward() fails with torch's error rather than giving a
// wrong gradient. backward() walks the graph from the loss in topological order, sums the
// gradients that reach each node, accumulates leaves' gradients into `tensor.grad`, and frees
// the saved tensors afterwards (retainGraph keeps them for another pass).

import { Tensor, registerBackwardEngine, shapeToString, shapesEqual, type GradFn } from '../core/tensor.js';
import { createReferenceBackend, getBackend, type Backend } from '../backends/index.js';

// --- grad mode ------------------------------------------------------------------------------

let gradEnabled = true;

/** Whether ops record the graph now (torch.is_grad_enabled). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Turns recording on or off until the next call (torch.set_grad_enabled). */
export function setGradEnabled(enabled: boolean): void {
  gradEnabled = enabled;
}

function withGradMode<T>(enabled: boolean, work: () => T): T {
  const previous = gradEnabled;
  gradEnabled = enabled;
  try {
    return work();
  } finally {
    gradEnabled = previous;
  }
}

/** Runs `work` with recording off (torch.no_grad): inference, evaluation, optimizer updates. */
export function noGrad<T>(work: () => T): T {
  return withGradMode(false, work);
}

/** Runs `work` with recording on, inside a noGrad block too (torch.enable_grad). */
export function enableGrad<T>(work: () => T): T {
  return withGradMode(true, work);
}

// --- backward kernels -----------------------------------------------------------------------

type BackwardKernelName =
  | 'conv2dBackwardInput' | 'conv2dBackwardWeight' | 'channelSums' | 'batchNormBackward'
  | 'maxPool2dBackward' | 'adaptiveAvgPool2dBackward' | 'reluBackward' | 'matmul';

/** The backward kernels, each one always present. */
export type BackwardKernels = { [K in BackwardKernelName]: NonNullable<Backend[K]> };

const KERNEL_NAMES: BackwardKernelName[] = [
  'conv2dBackwardInput', 'conv2dBackwardWeight', 'channelSums', 'batchNormBackward',
  'maxPool2dBackward', 'adaptiveAvgPool2dBackward', 'reluBackward', 'matmul',
];

let reference: Backend | null = null;

/**
 * The current backend's backward kernels, the reference backend's standing in for any it
 * lacks (backend.xBackward ?? reference.xBackward): every backend trains, and a fast one
 * gains its own kernels one at a time.
 */
export function backwardKernels(): BackwardKernels {
  const backend = getBackend();
  reference ??= createReferenceBackend();
  const ref = reference;
  const kernels: Partial<Record<BackwardKernelName, unknown>> = {};
  for (const name of KERNEL_NAMES) {
    const owner = backend[name] ? backend : ref;
    const kernel = owner[name] as ((...args: unknown[]) => unknown) | undefined;
    kernels[name] = (...args: unknown[]): unknown => {
      if (!kernel) throw new Error(`backward: neither the ${backend.name} backend nor the reference has a ${name} kernel`);
      return kernel.apply(owner, args);
    };
  }
  return kernels as BackwardKernels;
}

// --- the graph ------------------------------------------------------------------------------

/** A tensor a node saved for its backward, with the version it had then. */
interface SavedTensor {
  tensor: Tensor;
  version: number;
}

/**
 * An op's backward: the gradient of its output → the gradient of each input (null where
 * `needsGrad[i]` is false or the input is not differentiable). `saved` holds the tensors the
 * forward saved, checked against their versions.
 */
export type BackwardFn<S extends Record<string, Tensor>> = (gradOutput: Tensor, saved: S, needsGrad: readonly boolean[]) => (Tensor | null)[];

/** A recorded op. `inputs` are the tensors it sends gradients to, in the order its backward returns them. */
export class Node implements GradFn {
  #saved: Map<string, SavedTensor> | null;

  constructor(
    readonly name: string,
    readonly inputs: readonly (Tensor | null)[],
    saved: Record<string, Tensor>,
    readonly outputShape: readonly number[],
    private readonly backwardFn: BackwardFn<Record<string, Tensor>>,
  ) {
    this.#saved = new Map(Object.entries(saved).map(([key, tensor]) => [key, { tensor, version: tensor.version }]));
  }

  /** Runs the op's backward; throws if the graph was freed or a saved tensor changed since the forward. */
  apply(gradOutput: Tensor): (Tensor | null)[] {
    if (!this.#saved) {
      throw new Error(
        `Trying to backward through the graph a second time (${this.name}'s saved tensors were freed by the first backward()); ` +
          'pass { retainGraph: true } to the first backward() to keep them',
      );
    }
    const saved: Record<string, Tensor> = {};
    for (const [key, entry] of this.#saved) {
      if (entry.tensor.version !== entry.version) {
        throw new Error(
          `one of the variables needed for gradient computation has been modified by an inplace operation: ` +
            `[${entry.tensor.dtype} ${shapeToString(entry.tensor.shape)}] '${key}' saved by ${this.name} ` +
            `has changed since the forward pass`,
        );
      }
      saved[key] = entry.tensor;
    }
    const needsGrad = this.inputs.map((t) => t !== null && t.requiresGrad);
    return this.backwardFn(gradOutput, saved, needsGrad);
  }

  /** Drops the saved tensors (after a backward without retainGraph). */
  release(): void {
    this.#saved = null;
  }
}

/** Whether an op on these inputs should be recorded: grad mode on, and some input requires a gradient. */
export function needsGraph(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t != null && t.requiresGrad && !t.isMeta);
}

/**
 * Attaches the op that made `output` to it, if `inputs` need a graph: `name` as torch calls the
 * node, `saved` the tensors the backward reads (checked against their versions then), and
 * `backward` the op's derivative. Returns `output`.
 */
export function record<S extends Record<string, Tensor>>(
  name: string, inputs: readonly (Tensor | null)[], output: Tensor, saved: S, backward: BackwardFn<S>,
): Tensor {
  if (!needsGraph(...inputs)) return output;
  output.gradFn = new Node(name, inputs, saved, output.shape, backward as BackwardFn<Record<string, Tensor>>);
  return output;
}

// --- backward -------------------------------------------------------------------------------

function addInto(sum: Tensor | undefined, gradient: Tensor): Tensor {
  return sum ? getBackend().add(sum, gradient) : gradient;
}

/** grad += gradient, into the leaf's own gradient tensor (a copy the first time: gradients may be shared). */
function accumulateLeaf(leaf: Tensor, gradient: Tensor): void {
  if (!leaf.grad) {
    leaf.grad = new Tensor(gradient.f32.slice(), leaf.shape);
    return;
  }
  const into = leaf.grad.f32;
  const from = gradient.f32;
  for (let i = 0; i < into.length; i++) into[i] += from[i];
  leaf.grad.bumpVersion();
}

function checkGradient(what: string, expected: readonly number[], gradient: Tensor): void {
  if (!shapesEqual(gradient.shape, expected)) {
    throw new RangeError(`${what}: gradient of shape ${shapeToString(gradient.shape)} for a tensor of shape ${shapeToString(expected)}`);
  }
}

/** The engine behind Tensor.backward(). */
function runBackward(root: Tensor, gradient: Tensor | undefined, options: { retainGraph?: boolean }): void {
  if (!root.requiresGrad) throw new Error('element 0 of tensors does not require grad and does not have a gradFn');
  if (!gradient) {
    if (root.size !== 1) throw new Error(`grad can be implicitly created only for scalar outputs (got shape ${shapeToString(root.shape)})`);
    gradient = Tensor.full(root.shape, 1);
  }
  checkGradient('backward', root.shape, gradient);
  noGrad(() => {
    const rootNode = root.gradFn as Node | null;
    if (!rootNode) {
      accumulateLeaf(root, gradient!);
      return;
    }
    // Dependencies: how many edges from nodes still to run lead into each node.
    const dependencies = new Map<Node, number>();
    const seen = new Set<Node>([rootNode]);
    const stack = [rootNode];
    while (stack.length > 0) {
      const node = stack.pop()!;
      for (const input of node.inputs) {
        const next = input?.gradFn as Node | null | undefined;
        if (!next) continue;
        dependencies.set(next, (dependencies.get(next) ?? 0) + 1);
        if (!seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    const pending = new Map<Node, Tensor>([[rootNode, gradient!]]);
    const ready = [rootNode];
    while (ready.length > 0) {
      const node = ready.pop()!;
      const gradOutput = pending.get(node);
      pending.delete(node);
      // A node that no gradient reached (every path to it returned none) passes none on.
      const gradInputs = gradOutput ? node.apply(gradOutput) : [];
      if (!options.retainGraph) node.release();
      node.inputs.forEach((input, i) => {
        if (!input || !input.requiresGrad) return;
        const g = gradInputs[i] ?? null;
        if (g) checkGradient(node.name, input.shape, g);
        const next = input.gradFn as Node | null;
        if (!next) {
          if (g) accumulateLeaf(input, g);
          return;
        }
        if (g) pending.set(next, addInto(pending.get(next), g));
        const left = dependencies.get(next)! - 1;
        dependencies.set(next, left);
        if (left === 0) ready.push(next);
      });
    }
  });
}

registerBackwardEngine(runBackward);
