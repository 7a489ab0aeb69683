// Eval-mode inference: plans built from traced forward passes (plan.ts), BatchNorm folding (fold.ts).

export { Plan, type ExitHandler } from './plan.js';
export { foldBatchNorm, foldable, foldedWeights, type FoldedBatchNorm } from './fold.js';
