// Learning-rate schedules, as torch.optim.lr_scheduler (torch 1.13): each step() sets every
// group's lr from its current lr by the schedule's recursive ("chainable") form, and step(epoch)
// from the closed form, so the sequence of lrs is torch's to the last bit of float64, quirks
// included (SequentialLR restarts its next schedule with step(0)). Call scheduler.step() after
// optimizer.step(), once per epoch or per iteration, as torch does.

import type { GroupOptions, Optimizer } from './optimizer.js';

/** A schedule's state for resuming: its counters and the lrs it last set. */
export interface SchedulerStateDict {
  last_epoch: number;
  _step_count: number;
  base_lrs: number[];
  _last_lr: number[];
  _schedulers?: SchedulerStateDict[];
}

export abstract class LRScheduler {
  readonly optimizer: Optimizer<GroupOptions>;
  /** The epoch (or iteration) of the lrs set last: 0 after construction. */
  lastEpoch: number;
  baseLrs: number[];
  protected stepCount = 0;
  protected lastLr: number[] = [];

  /** Subclasses call initialStep() at the end of their constructor, as torch's base does. */
  constructor(optimizer: Optimizer<GroupOptions>, lastEpoch = -1) {
    this.optimizer = optimizer;
    if (lastEpoch === -1) {
      for (const group of optimizer.paramGroups) group.initialLr ??= group.lr;
    } else {
      optimizer.paramGroups.forEach((group, i) => {
        if (group.initialLr === undefined) throw new Error(`param 'initial_lr' is not specified in param_groups[${i}] when resuming an optimizer`);
      });
    }
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /** The first step, which sets the lrs of epoch 0 (torch's _initial_step). */
  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The lrs of lastEpoch from the groups' current lrs (the recursive form). */
  protected abstract getLr(): number[];

  /** The lrs of lastEpoch from the base lrs alone, where the schedule has one. */
  protected closedFormLr?(): number[];

  /** Moves to the next epoch, or to `epoch` (closed form), and sets every group's lr. */
  step(epoch?: number): void {
    this.stepCount += 1;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch += 1;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr ? this.closedFormLr() : this.getLr();
    }
    this.optimizer.paramGroups.forEach((group, i) => {
      group.lr = values[i];
    });
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lrs the last step set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  protected groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): SchedulerStateDict {
    return { last_epoch: this.lastEpoch, _step_count: this.stepCount, base_lrs: [...this.baseLrs], _last_lr: [...this.lastLr] };
  }

  loadStateDict(state: SchedulerStateDict): void {
    this.lastEpoch = state.last_epoch;
    this.stepCount = state._step_count;
    this.baseLrs = [...state.base_lrs];
    this.lastLr = [...state._last_lr];
  }
}

/** lr × gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer<GroupOptions>, readonly stepSize: number, readonly gamma = 0.1, lastEpoch = -1) {
    super(optimizer, lastEpoch);
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groupLrs();
    return this.groupLrs().map((lr) => lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((base) => base * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** Cosine annealing from the base lr to etaMin over tMax epochs (Loshchilov & Hutter 2017, without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: Optimizer<GroupOptions>, readonly tMax: number, readonly etaMin = 0, lastEpoch = -1) {
    super(optimizer, lastEpoch);
    this.initialStep();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, tMax, etaMin } = this;
    if (e === 0) return this.groupLrs();
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((base) => etaMin + ((base - etaMin) * (1 + Math.cos((e * Math.PI) / tMax))) / 2);
    }
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      return this.groupLrs().map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    }
    return this.groupLrs().map(
      (lr) => ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (lr - etaMin) + etaMin,
    );
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((base) => this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }
}

/** Linear change of the lr's factor from startFactor to endFactor over totalIters epochs: a warm-up. */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;

  constructor(
    optimizer: Optimizer<GroupOptions>,
    options: { startFactor?: number; endFactor?: number; totalIters?: number } = {},
    lastEpoch = -1,
  ) {
    const startFactor = options.startFactor ?? 1 / 3;
    const endFactor = options.endFactor ?? 1;
    if (startFactor > 1 || startFactor < 0) throw new RangeError('Starting multiplicative factor expected to be between 0 and 1.');
    if (endFactor > 1 || endFactor < 0) throw new RangeError('Ending multiplicative factor expected to be between 0 and 1.');
    super(optimizer, lastEpoch);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = options.totalIters ?? 5;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    if (e === 0) return this.groupLrs().map((lr) => lr * s);
    if (e > n) return this.groupLrs();
    return this.groupLrs().map((lr) => lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }

  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((base) => base * (s + ((f - s) * Math.min(n, this.lastEpoch)) / n));
  }
}

/**
 * Runs schedulers one after another, switching at the milestones (epochs): a linear warm-up
 * then cosine annealing, say. Give it schedulers just constructed on the same optimizer.
 */
export class SequentialLR extends LRScheduler {
  readonly schedulers: LRScheduler[];
  readonly milestones: number[];

  constructor(optimizer: Optimizer<GroupOptions>, schedulers: LRScheduler[], milestones: number[], lastEpoch = -1) {
    // torch's SequentialLR does not run the base constructor; this one only reads the base lrs.
    super(optimizer, 0);
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) throw new Error(`Sequential Schedulers expects all schedulers to belong to the same optimizer, but got schedulers at index ${i} to be different than the optimizer passed in.`);
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new RangeError(`Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`);
    }
    this.schedulers = schedulers;
    this.milestones = milestones;
    this.lastEpoch = lastEpoch + 1;
    // Back to the initial lrs, each scheduler's construction step undone, the first one's redone.
    for (const group of optimizer.paramGroups) group.lr = group.initialLr!;
    for (const s of schedulers) s.lastEpoch -= 1;
    schedulers[0].initialStep();
    this.lastLr = schedulers[0].getLastLr();
  }

  protected getLr(): number[] {
    return this.getLastLr();
  }

  override step(): void {
    this.lastEpoch += 1;
    let index = 0;
    while (index < this.milestones.length && this.milestones[index] <= this.lastEpoch) index++;
    const scheduler = this.schedulers[index];
    if (index > 0 && this.milestones[index - 1] === this.lastEpoch) scheduler.step(0);
    else scheduler.step();
    this.lastLr = scheduler.getLastLr();
  }

  override stateDict(): SchedulerStateDict {
    return { ...super.stateDict(), _schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  override loadStateDict(state: SchedulerStateDict): void {
    super.loadStateDict(state);
    state._schedulers?.forEach((s, i) => this.schedulers[i].loadStateDict(s));
  }
}
