// Adam with decoupled weight decay (Loshchilov & Hutter 2019), as torch.optim.AdamW (torch
// 1.13's single-tensor path): the weight shrinks by lr·weightDecay, then the first and second
// moments update, and the step divides the bias-corrected first moment by the root of the
// bias-corrected second (its running maximum with amsgrad) plus eps. Per-element arithmetic
// in float32 as torch's kernels (scalars rounded to float32 first, as they pass them); the bias
// corrections in float64 as torch's Python does.

import { Tensor } from '../core/tensor.js';
import { Optimizer, withGradients, type GroupOptions, type ParamsInput, type ParamGroup } from './optimizer.js';

export interface AdamWOptions extends GroupOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

const f32 = Math.fround;

export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: ParamsInput<AdamWOptions>, options: Partial<AdamWOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, ...options });
  }

  protected checkGroup(g: ParamGroup<AdamWOptions>): void {
    if (!(g.lr >= 0)) throw new RangeError(`Invalid learning rate: ${g.lr}`);
    if (!(g.eps >= 0)) throw new RangeError(`Invalid epsilon value: ${g.eps}`);
    g.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new RangeError(`Invalid beta parameter at index ${i}: ${b}`);
    });
    if (!(g.weightDecay >= 0)) throw new RangeError(`Invalid weight_decay value: ${g.weightDecay}`);
  }

  step(): void {
    for (const group of this.paramGroups) {
      const [beta1, beta2] = group.betas;
      const { lr, amsgrad, maximize } = group;
      for (const [param, grad] of withGradients(group)) {
        let state = this.state.get(param);
        if (!state) {
          state = { step: Tensor.zeros([]), exp_avg: Tensor.zeros(param.shape), exp_avg_sq: Tensor.zeros(param.shape) };
          if (amsgrad) state.max_exp_avg_sq = Tensor.zeros(param.shape);
          this.state.set(param, state);
        }
        const stepTensor = state.step.f32;
        stepTensor[0] += 1;
        const step = stepTensor[0];
        const biasCorrection1 = 1 - beta1 ** step;
        const biasCorrection2Sqrt = f32(Math.sqrt(1 - beta2 ** step));
        const stepSize = f32(lr / biasCorrection1);
        const decay = f32(1 - lr * group.weightDecay);
        const eps = f32(group.eps);
        const keep1 = f32(1 - beta1);
        const keep2 = f32(1 - beta2);
        const decay1 = f32(beta1);
        const decay2 = f32(beta2);
        const w = param.f32;
        const m = state.exp_avg.f32;
        const v = state.exp_avg_sq.f32;
        const vMax = amsgrad ? state.max_exp_avg_sq.f32 : null;
        for (let i = 0; i < w.length; i++) {
          const g = maximize ? -grad[i] : grad[i];
          w[i] = w[i] * decay;
          m[i] = f32(m[i] * decay1) + keep1 * g;
          v[i] = f32(v[i] * decay2) + f32(keep2 * g) * g;
          let second = v[i];
          if (vMax) second = vMax[i] = Math.max(vMax[i], v[i]);
          const denom = f32(f32(Math.sqrt(second)) / biasCorrection2Sqrt) + eps;
          w[i] = w[i] + f32(-stepSize * m[i]) / denom; // addcdiv: self + value·t1/t2, left to right
        }
        for (const t of [param, ...Object.values(state)]) t.bumpVersion();
      }
    }
  }
}
