// The Module base class, as torch.nn.Module: named parameters, buffers and child modules in
// registration order, train/eval mode, and state dicts whose keys are torch's dotted names
// (`layer1.0.downsample.0.weight`). Those names are our wire format for weight files.
// In eval mode a module's forward runs as an inference plan (src/plan) traced from it, unless
// autograd needs the graph (grad mode on and a parameter or the input requires a gradient):
// then the modules run their forward, as in train mode. Parameters require gradients from the
// start, as torch's do: run inference inside noGrad() (or freeze with requiresGrad_(false)).

import { Tensor, shapeToString, shapesEqual } from '../core/tensor.js';
import { isTracing, recordScope, trace, type Trace } from '../ops/trace.js';
import { isGradEnabled } from '../ops/autograd.js';
import { Plan } from '../plan/index.js';

export type StateDict = Map<string, Tensor>;

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Keys present in both whose shapes differ; not loaded. */
  mismatchedKeys: { key: string; expected: readonly number[]; got: readonly number[] }[];
}

export class StateDictError extends Error {
  override name = 'StateDictError';
  constructor(message: string, readonly result: LoadStateDictResult) {
    super(message);
  }
}

/** Buffers that torch lets a state dict omit (BatchNorm checkpoints from before torch 0.4.1). */
const OPTIONAL_BUFFER_SUFFIX = 'num_batches_tracked';

/** Inference plans a module keeps, one per input shape and set of hooked modules, most recent first. */
const PLANS_PER_MODULE = 8;

/** Called after a module's forward with its input and output (torch's forward hooks). */
export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => void;

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  readonly #forwardHooks = new Set<ForwardHook>();
  /** Plans by `${input shape}|${indices of hooked modules}`, with the modules they were traced from. */
  readonly #plans = new Map<string, { modules: Module[]; plan: Plan }>();

  constructor() {
    // `forward` is what a subclass defines, as in torch. Every call of it, direct or through
    // call(), comes here first: when this module and every module inside it are in eval mode,
    // the pass runs from the module's inference plan (src/plan: BatchNorm folded, fused
    // epilogues, activations reused), traced from the subclass's forward on the first call for
    // each input shape. Train mode, the tracing pass itself, and a pass autograd records run
    // the subclass's forward.
    const self = this as { forward: (x: Tensor) => Tensor };
    const defined = self.forward;
    self.forward = (x: Tensor): Tensor => this.#forward(defined, x);
  }

  /** The computation; parents invoke children through `call`, which also runs the hooks. */
  abstract forward(x: Tensor): Tensor;

  /** Runs forward and then the forward hooks, as calling a torch module does. */
  call(x: Tensor): Tensor {
    if (isTracing()) {
      // Hooks run when the plan runs, on real tensors; the trace notes where they will.
      recordScope({ kind: 'enter', scope: this, input: x });
      const out = this.forward(x);
      recordScope({ kind: 'exit', scope: this, hooked: this.hasForwardHooks(), input: x, output: out });
      return out;
    }
    const out = this.forward(x);
    this.#runHooks(x, out);
    return out;
  }

  #runHooks(input: Tensor, output: Tensor): void {
    for (const hook of this.#forwardHooks) hook(this, input, output);
  }

  #forward(defined: (x: Tensor) => Tensor, x: Tensor): Tensor {
    if (this.training || isTracing()) return defined.call(this, x);
    const modules = [...this.modules()];
    if (modules.some((m) => m.training) || this.#needsGraph(x)) return defined.call(this, x);
    return this.#plan(defined, x, modules).run(x, (scope, input, output) => (scope as Module).#runHooks(input, output));
  }

  /** Whether autograd records this pass: grad mode on, and the input or a parameter requires a gradient. */
  #needsGraph(x: Tensor): boolean {
    if (!isGradEnabled()) return false;
    if (x.requiresGrad) return true;
    for (const p of this.parameters()) if (p.requiresGrad) return true;
    return false;
  }

  /**
   * The plan for x's shape. Which modules are hooked is part of the key (a hooked module's
   * output must exist as a tensor, so less is fused); the module list is checked too (a module
   * added since). Versions of the tensors cover the rest: the plan reads parameters and
   * buffers when it runs, and its caches key on their versions.
   */
  #plan(defined: (x: Tensor) => Tensor, x: Tensor, modules: Module[]): Plan {
    const hooked = modules.flatMap((m, i) => (i > 0 && m.hasForwardHooks() ? [i] : [])); // own hooks run in call()
    const key = `${x.shape.join(',')}|${hooked.join(',')}`;
    const cached = this.#plans.get(key);
    this.#plans.delete(key);
    if (cached && cached.modules.length === modules.length && cached.modules.every((m, i) => m === modules[i])) {
      this.#plans.set(key, cached);
      return cached.plan;
    }
    const plan = new Plan(trace(x.shape, (meta) => defined.call(this, meta)));
    if (this.#plans.size >= PLANS_PER_MODULE) this.#plans.delete(this.#plans.keys().next().value!);
    this.#plans.set(key, { modules, plan });
    return plan;
  }

  hasForwardHooks(): boolean {
    return this.#forwardHooks.size > 0;
  }

  /** Adds a hook that sees every output of this module; returns a function that removes it. */
  registerForwardHook(hook: ForwardHook): () => void {
    this.#forwardHooks.add(hook);
    return () => this.#forwardHooks.delete(hook);
  }

  /**
   * Registers a learnable tensor under `name`; returns it for assignment to a field. It
   * requires gradients from now on, as a torch Parameter (requiresGrad_(false) freezes it).
   */
  protected addParameter(name: string, value: Tensor): Tensor {
    this.checkName(name);
    this.#parameters.set(name, value.requiresGrad_(true));
    return value;
  }

  /** Registers a non-learnable tensor that belongs in the state dict (running statistics). */
  protected addBuffer(name: string, value: Tensor): Tensor {
    this.checkName(name);
    this.#buffers.set(name, value);
    return value;
  }

  /** Registers a child module under `name`; returns it for assignment to a field. */
  addModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this.#children.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid module attribute name '${name}'`);
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`attribute '${name}' already registered`);
    }
  }

  /**
   * The class name shown in summaries, diagrams and error messages: the class's own static
   * `typeName` where it declares one (every module of this library does, so a minified bundle
   * still says 'BasicBlock'), else the constructor's name (a user's subclass).
   */
  get typeName(): string {
    const type = this.constructor as { typeName?: unknown; name: string };
    return Object.hasOwn(type, 'typeName') && typeof type.typeName === 'string' ? type.typeName : type.name;
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this.#children;
  }

  /** This module and every descendant, depth first, with dotted names ('' for this one). */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.#children) yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  *modules(): IterableIterator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  *namedParameters(prefix = ''): IterableIterator<[string, Tensor]> {
    for (const [name, module] of this.namedModules(prefix)) {
      for (const [key, t] of module.#parameters) yield [name ? `${name}.${key}` : key, t];
    }
  }

  *parameters(): IterableIterator<Tensor> {
    for (const [, t] of this.namedParameters()) yield t;
  }

  *namedBuffers(prefix = ''): IterableIterator<[string, Tensor]> {
    for (const [name, module] of this.namedModules(prefix)) {
      for (const [key, t] of module.#buffers) yield [name ? `${name}.${key}` : key, t];
    }
  }

  /** Own parameters and buffers, in torch's state-dict order (parameters, then buffers). */
  *#ownEntries(): IterableIterator<[string, Tensor]> {
    yield* this.#parameters;
    yield* this.#buffers;
  }

  /**
   * Every parameter and buffer by dotted name, in torch's order: a module's own
   * parameters, its buffers, then each child in registration order. The tensors are the
   * module's own (not copies).
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, module] of this.namedModules()) {
      for (const [key, t] of module.#ownEntries()) out.set(name ? `${name}.${key}` : key, t);
    }
    return out;
  }

  /**
   * Copies a state dict into this module's tensors. All keys and shapes are checked before
   * anything is copied, so a strict load that fails leaves the module as it was.
   * With `strict: false`, what fits is loaded and the rest is returned.
   * With `assign: true` (torch's assign=True), the module's tensors take the given tensors'
   * memory instead of a copy of it (where the dtypes agree): the state dict and the module then
   * share their data, and a model loaded from a file is held once.
   */
  loadStateDict(
    stateDict: Map<string, Tensor> | Record<string, Tensor>, options: { strict?: boolean; assign?: boolean } = {},
  ): LoadStateDictResult {
    const strict = options.strict ?? true;
    const source = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const own = this.stateDict();
    const result: LoadStateDictResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
    const toCopy: [Tensor, Tensor][] = [];
    for (const [key, target] of own) {
      const value = source.get(key);
      if (value === undefined) {
        if (!key.endsWith(`.${OPTIONAL_BUFFER_SUFFIX}`) && key !== OPTIONAL_BUFFER_SUFFIX) result.missingKeys.push(key);
        continue;
      }
      if (!shapesEqual(value.shape, target.shape)) {
        result.mismatchedKeys.push({ key, expected: target.shape, got: value.shape });
        continue;
      }
      toCopy.push([target, value]);
    }
    for (const key of source.keys()) if (!own.has(key)) result.unexpectedKeys.push(key);

    const failed = result.mismatchedKeys.length > 0 || result.missingKeys.length > 0 || result.unexpectedKeys.length > 0;
    if (strict && failed) throw new StateDictError(formatLoadErrors(this.typeName, result), result);
    for (const [target, value] of toCopy) {
      if (options.assign && value.dtype === target.dtype) target.set_(value);
      else target.copy_(value);
    }
    return result;
  }

  /**
   * Sets requiresGrad on every parameter of this module and its descendants (torch's
   * requires_grad_): requiresGrad_(false) freezes them, so backward() leaves their `grad` alone
   * and an eval-mode pass that needs no graph runs from the inference plan.
   */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }

  /**
   * Clears the gradients of every parameter: to null (setToNone, the default, as torch 2; a
   * later backward() allocates them again), or to zeros in place (torch 1.13's default).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    zeroGrads(this.parameters(), options.setToNone ?? true);
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** The number of elements over all parameters. */
  parameterCount(): number {
    let n = 0;
    for (const [, t] of this.namedParameters()) n += t.size;
    return n;
  }

  /** Extra text shown after the type name, like torch's extra_repr. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const lines = [...this.#children].map(([name, child]) => `(${name}): ${String(child).replace(/\n/g, '\n  ')}`);
    const head = `${this.typeName}(${this.extraRepr()}`;
    return lines.length === 0 ? `${head})` : `${head}\n  ${lines.join('\n  ')}\n)`;
  }
}

/**
 * The trace of `module`'s eval-mode pass on a meta input of `inputShape` (as its inference plan
 * sees it; the module's own call included), every module's mode restored afterwards. Shape
 * errors of the pass are thrown as the ops throw them.
 */
export function traceEval(module: Module, inputShape: readonly number[]): Trace {
  const modes = [...module.modules()].map((m) => [m, m.training] as const);
  try {
    module.eval();
    return trace(inputShape, (x) => module.call(x));
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
}

/** What puts a prefix before every key of a model's state dict, by prefix. */
const KNOWN_PREFIXES: Record<string, string> = {
  'module.': 'a DataParallel or DistributedDataParallel checkpoint',
  '_orig_mod.': 'the state dict of a torch.compile model',
};

/**
 * Why a state dict may not fit, where a common cause explains it: every unexpected key is a
 * missing one behind one prefix ('module.' of DataParallel or DistributedDataParallel,
 * '_orig_mod.' of torch.compile, or the attribute a wrapper keeps the model in, such as a
 * Lightning module's 'model.'), which torch does not strip either. '' otherwise.
 */
export function stateDictHint(r: LoadStateDictResult): string {
  const [first] = r.unexpectedKeys;
  if (first === undefined) return '';
  const missing = new Set(r.missingKeys);
  // The shortest prefix (whole dotted segments of the first key) that every unexpected key has
  // and whose removal gives a missing key.
  for (let end = first.indexOf('.'); end > 0; end = first.indexOf('.', end + 1)) {
    const prefix = first.slice(0, end + 1);
    if (!r.unexpectedKeys.every((k) => k.startsWith(prefix))) break;
    if (!r.unexpectedKeys.some((k) => missing.has(k.slice(prefix.length)))) continue;
    const cause = KNOWN_PREFIXES[prefix] ?? 'a checkpoint of a model held by a wrapper';
    return `every unexpected key is a model key behind '${prefix}' (${cause}): strip the prefix from the keys, as torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, '${prefix}') does`;
  }
  return '';
}

/** torch's wording: "Error(s) in loading state_dict for ResNet: Missing key(s) ..." */
export function formatLoadErrors(typeName: string, r: LoadStateDictResult): string {
  const quote = (keys: string[]): string => keys.map((k) => `"${k}"`).join(', ');
  const parts: string[] = [];
  if (r.missingKeys.length > 0) parts.push(`Missing key(s) in state_dict: ${quote(r.missingKeys)}.`);
  if (r.unexpectedKeys.length > 0) parts.push(`Unexpected key(s) in state_dict: ${quote(r.unexpectedKeys)}.`);
  for (const m of r.mismatchedKeys) {
    parts.push(
      `size mismatch for ${m.key}: copying a param with shape ${shapeToString(m.got)} from checkpoint, ` +
        `the shape in current model is ${shapeToString(m.expected)}.`,
    );
  }
  const hint = stateDictHint(r);
  return `Error(s) in loading state_dict for ${typeName}:\n\t${parts.join('\n\t')}${hint ? `\n${hint}` : ''}`;
}

/** Clears the gradients of `params`: to null, or to zeros in place. Module.zeroGrad and the optimizers share it. */
export function zeroGrads(params: Iterable<Tensor>, setToNone: boolean): void {
  for (const p of params) {
    if (!p.grad) continue;
    if (setToNone) p.grad = null;
    else p.grad.fill_(0);
  }
}
