// The optimizer base, as torch.optim.Optimizer: parameter groups (each with its own
// hyperparameters over the defaults), per-parameter state, zeroGrad, and state dicts in
// torch's layout and key names ({ state: {index: {momentum_buffer, …}}, param_groups: [{lr,
// weight_decay, …, params: [indices]}] }) so training can stop and resume exactly.

import { Tensor } from '../core/tensor.js';
import { zeroGrads } from '../nn/module.js';

/** Hyperparameters every group has; each optimizer adds its own. */
export interface GroupOptions {
  lr: number;
  /** The lr the schedules start from (torch's initial_lr), set by the first LRScheduler. */
  initialLr?: number;
}

/** A parameter group: its parameters and its hyperparameters (the optimizer's defaults where the group gave none). */
export type ParamGroup<O extends GroupOptions> = O & { params: Tensor[] };

/** What an optimizer takes: parameters, or groups of them each with overrides of the defaults. */
export type ParamsInput<O extends GroupOptions> = Iterable<Tensor> | readonly ({ params: Iterable<Tensor> } & Partial<O>)[];

/** torch's optimizer state dict: per-parameter state by index over all groups, and the groups' hyperparameters. */
export interface OptimizerStateDict {
  state: Record<number, Record<string, Tensor>>;
  param_groups: (Record<string, number | boolean | number[] | null> & { params: number[] })[];
}

/** camelCase option ↔ torch's snake_case key in state dicts. */
function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isGroupList<O extends GroupOptions>(params: ParamsInput<O>): params is readonly ({ params: Iterable<Tensor> } & Partial<O>)[] {
  return Array.isArray(params) && params.length > 0 && !(params[0] instanceof Tensor);
}

export abstract class Optimizer<O extends GroupOptions> {
  readonly defaults: O;
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state (momentum buffers, moments), made on the parameter's first step. */
  readonly state = new Map<Tensor, Record<string, Tensor>>();

  constructor(params: ParamsInput<O>, defaults: O) {
    this.defaults = defaults;
    const groups = isGroupList(params) ? params : [{ params } as { params: Iterable<Tensor> } & Partial<O>];
    if (groups.length === 0) throw new RangeError('optimizer got an empty parameter list');
    for (const group of groups) this.addParamGroup(group);
  }

  /** Adds a group (torch's add_param_group): its options over the defaults; a parameter may be in one group only. */
  addParamGroup(group: { params: Iterable<Tensor> } & Partial<O>): void {
    const params = [...group.params];
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError('optimizer can only optimize Tensors');
      if (!p.isLeaf) throw new Error("can't optimize a non-leaf Tensor");
      if (this.paramGroups.some((g) => g.params.includes(p))) throw new Error('some parameters appear in more than one parameter group');
    }
    const merged = { ...this.defaults, ...group, params } as ParamGroup<O>;
    this.checkGroup(merged);
    this.paramGroups.push(merged);
  }

  /** Throws for hyperparameters the optimizer cannot use. */
  protected abstract checkGroup(group: ParamGroup<O>): void;

  /** One update of every parameter that has a gradient (parameters without one are skipped, as torch does). */
  abstract step(): void;

  /** Clears every parameter's gradient: to null (setToNone, the default, as torch 2), or to zeros (torch 1.13's default). */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    zeroGrads(this.paramGroups.flatMap((g) => g.params), options.setToNone ?? true);
  }

  /**
   * torch's state dict: parameters are numbered in group order; the state's tensors are the
   * optimizer's own (copy before changing them), the groups' options in torch's key names.
   */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    const paramGroups: OptimizerStateDict['param_groups'] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const entry: Record<string, number | boolean | number[] | null> = {};
      for (const [key, value] of Object.entries(group)) {
        if (key === 'params') continue;
        entry[snakeCase(key)] = Array.isArray(value) ? [...(value as number[])] : (value as number | boolean | null);
      }
      const indices: number[] = [];
      for (const p of group.params) {
        const s = this.state.get(p);
        if (s) state[index] = { ...s };
        indices.push(index++);
      }
      paramGroups.push({ ...entry, params: indices });
    }
    return { state, param_groups: paramGroups };
  }

  /** Restores a state dict of an optimizer over the same parameters, in the same groups (their sizes must match). */
  loadStateDict(stateDict: OptimizerStateDict): void {
    const groups = stateDict.param_groups;
    if (groups.length !== this.paramGroups.length) {
      throw new RangeError(`loaded state dict has ${groups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    groups.forEach((g, i) => {
      if (g.params.length !== this.paramGroups[i].params.length) {
        throw new RangeError(`loaded state dict's group ${i} has ${g.params.length} parameters, the optimizer's ${this.paramGroups[i].params.length}`);
      }
    });
    this.state.clear();
    groups.forEach((g, i) => {
      const group = this.paramGroups[i] as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(g)) {
        if (key !== 'params') group[camelCase(key)] = Array.isArray(value) ? [...value] : value;
      }
      g.params.forEach((index, j) => {
        const saved = stateDict.state[index];
        const param = this.paramGroups[i].params[j];
        if (!saved) return;
        const own: Record<string, Tensor> = {};
        for (const [key, t] of Object.entries(saved)) {
          if (key !== 'step' && t.shape.length !== 0 && t.size !== param.size) {
            throw new RangeError(`loaded state '${key}' of parameter ${index} has ${t.size} elements, the parameter ${param.size}`);
          }
          own[key] = t.clone();
        }
        this.state.set(param, own);
      });
    });
  }
}

/** The parameters of `groups` that have a gradient, with their gradient's data. */
export function* withGradients<O extends GroupOptions>(group: ParamGroup<O>): IterableIterator<[Tensor, Float32Array]> {
  for (const p of group.params) if (p.grad) yield [p, p.grad.f32];
}
