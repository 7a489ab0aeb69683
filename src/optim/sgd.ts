// Stochastic gradient descent with momentum, as torch.optim.SGD (torch 1.13's single-tensor
// path, the one its CPU runs): weight decay added to the gradient, then the momentum buffer
// (the first step copies the gradient into it), then Nesterov's look-ahead (Sutskever et al.
// 2013) if asked. Each element is computed in float32 as torch's kernels do.

import { Tensor } from '../core/tensor.js';
import { Optimizer, withGradients, type GroupOptions, type ParamsInput, type ParamGroup } from './optimizer.js';

export interface SGDOptions extends GroupOptions {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  /** Ascend instead of descend. */
  maximize: boolean;
}

const f32 = Math.fround;

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsInput<SGDOptions>, options: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options });
  }

  protected checkGroup(g: ParamGroup<SGDOptions>): void {
    if (!(g.lr >= 0)) throw new RangeError(`Invalid learning rate: ${g.lr}`);
    if (!(g.momentum >= 0)) throw new RangeError(`Invalid momentum value: ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new RangeError(`Invalid weight_decay value: ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new RangeError('Nesterov momentum requires a momentum and zero dampening');
  }

  step(): void {
    for (const group of this.paramGroups) {
      const { nesterov, maximize } = group;
      const momentum = f32(group.momentum);
      const weightDecay = f32(group.weightDecay);
      const keep = f32(1 - group.dampening);
      const lr = f32(group.lr);
      for (const [param, grad] of withGradients(group)) {
        const w = param.f32;
        // d = g + wd·w; buf = m·buf + (1 − dampening)·d (buf = d on the first step);
        // d = d + m·buf (Nesterov) or buf; w −= lr·d.
        let buffer: Float32Array | null = null;
        let first = false;
        if (momentum !== 0) {
          const state = this.state.get(param) ?? {};
          if (!state.momentum_buffer) {
            state.momentum_buffer = Tensor.zeros(param.shape);
            first = true;
          }
          this.state.set(param, state);
          buffer = state.momentum_buffer.f32;
        }
        for (let i = 0; i < w.length; i++) {
          let d = maximize ? -grad[i] : grad[i];
          if (weightDecay !== 0) d = f32(d + weightDecay * w[i]);
          if (buffer) {
            buffer[i] = first ? d : f32(f32(buffer[i] * momentum) + keep * d);
            d = nesterov ? f32(d + momentum * buffer[i]) : buffer[i];
          }
          w[i] = w[i] - lr * d;
        }
        param.bumpVersion();
        if (buffer) this.state.get(param)!.momentum_buffer.bumpVersion();
      }
    }
  }
}
