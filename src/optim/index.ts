// Optimizers and learning-rate schedules, as torch.optim (exported as `optim`).

export { Optimizer, type GroupOptions, type ParamGroup, type ParamsInput, type OptimizerStateDict } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { AdamW, type AdamWOptions } from './adamw.js';
export { LRScheduler, StepLR, CosineAnnealingLR, LinearLR, SequentialLR, type SchedulerStateDict } from './lr-scheduler.js';
export { setWeightDecay, type WeightDecayGroup } from './groups.js';
