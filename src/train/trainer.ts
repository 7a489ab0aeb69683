// Training a ResNet as torchvision's reference script does it, for `resnet train`: a model
// (from scratch, or fine-tuned from pretrained weights with a new `fc` for the data's classes,
// optionally with the backbone frozen), cross-entropy with label smoothing, SGD with momentum
// or AdamW (norm layers and biases without weight decay), a linear warm-up then cosine
// annealing stepped every iteration (so even one epoch anneals), validation after every
// epoch, and the run's files: last and best weights, the resume state, a JSON log and a plot.
//
// Resuming is exact: the data order and augmentation of epoch e depend on (seed, e) alone
// (src/data/loader.ts), and resume.safetensors holds the weights, BatchNorm statistics,
// optimizer buffers and schedule as they were when epoch e ended, so epochs e+1… give the
// losses an uninterrupted run gives.

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tensor } from '../core/tensor.js';
import * as F from '../ops/functional.js';
import { noGrad } from '../ops/autograd.js';
import { stateDictHint, type Module } from '../nn/module.js';
import { BatchNorm2d } from '../nn/layers.js';
import { AdamW, CosineAnnealingLR, LinearLR, SGD, SequentialLR, setWeightDecay, type LRScheduler, type Optimizer, type GroupOptions, type OptimizerStateDict } from '../optim/index.js';
import { readSafetensors, readSafetensorsMetadata, writeSafetensors } from '../io/safetensors.js';
import { loadWeights, resolveWeights } from '../weights/load.js';
import { getModel, type AnyResNet } from '../models/builders.js';
import type { DataLoader } from '../data/index.js';
import { plotPanels } from '../tools/plot.js';
import { decodeModelMetadata, saveWeights, writeFileAtomic, type ModelMetadata } from './checkpoint.js';
import { loadTrainData, makeLoaders, type TrainData } from './data.js';

export interface TrainOptions {
  arch: string;
  /** 'fashion-mnist' or an image folder. */
  data: string;
  /** Pretrained weights to fine-tune from: a torchvision weights name, a file or a URL. */
  weights?: string;
  /** Train only `fc`; the backbone's weights and BatchNorm statistics stay as loaded. */
  freezeBackbone?: boolean;
  epochs: number;
  batchSize: number;
  /** Peak learning rate (after warm-up): 0.1 for SGD from scratch, 0.01 fine-tuning, 1e-3 for AdamW by default. */
  lr?: number;
  optimizer: 'sgd' | 'adamw';
  momentum: number;
  nesterov: boolean;
  /** 5e-4 from scratch, 1e-4 fine-tuning, 0.05 for AdamW by default. */
  weightDecay?: number;
  labelSmoothing: number;
  /** Warm-up length in epochs (may be fractional), at most a tenth of the run; 1 by default. */
  warmupEpochs: number;
  seed: number;
  /** Output folder. */
  out: string;
  /** Crop size for folder data (224). */
  imageSize?: number;
  /** Folder images as one grey channel (Fashion-MNIST is grey anyway). */
  grayscale?: boolean;
  /** Only the first n samples of each split. */
  limit?: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** The learning rate at the epoch's last step. */
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

/** What happens during a run, for a progress bar and logs. */
export interface TrainEvents {
  onStart?(info: { epochs: number; startEpoch: number; stepsPerEpoch: number; trainImages: number; valImages: number; classes: readonly string[] }): void;
  onStep?(info: { epoch: number; step: number; steps: number; loss: number; accuracy: number; imagesPerSecond: number; lr: number }): void;
  onValidate?(info: { epoch: number }): void;
  onEpoch?(record: EpochRecord, best: boolean): void;
}

export interface EvalResult {
  accuracy: number;
  loss: number;
  images: number;
}

/** The run's files in `out`. */
export const RUN_FILES = {
  resume: 'resume.safetensors',
  log: 'log.json',
  plot: 'training.svg',
} as const;

/** Argmax of each row of logits (N, K) compared with int64 targets (N): how many are right. */
export function countCorrect(logits: Tensor, targets: Tensor): number {
  const [n, k] = logits.shape;
  const values = logits.f32;
  const labels = targets.data as BigInt64Array;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (values[i * k + j] > values[i * k + best]) best = j;
    if (BigInt(best) === labels[i]) correct++;
  }
  return correct;
}

/** Accuracy and mean cross-entropy of `model` in eval mode over every batch of `loader`. */
export async function evaluate(model: Module & { forward(x: Tensor): Tensor }, loader: DataLoader<Tensor>, onBatch?: (done: number, total: number) => void): Promise<EvalResult> {
  const wasTraining = model.training;
  model.eval();
  let correct = 0;
  let lossSum = 0;
  let images = 0;
  let done = 0;
  try {
    for await (const batch of loader.epochBatches(0)) {
      noGrad(() => {
        const logits = model.forward(batch.images);
        const n = batch.images.shape[0];
        lossSum += F.crossEntropy(logits, batch.targets).item() * n;
        correct += countCorrect(logits, batch.targets);
        images += n;
      });
      onBatch?.(++done, loader.length);
    }
  } finally {
    model.train(wasTraining);
  }
  return { accuracy: images ? correct / images : 0, loss: images ? lossSum / images : 0, images };
}

/** The recipe's defaults for what the user left unset. */
export function resolveRecipe(options: Pick<TrainOptions, 'optimizer' | 'weights' | 'lr' | 'weightDecay'>): { lr: number; weightDecay: number } {
  const fineTune = options.weights !== undefined;
  const lr = options.lr ?? (options.optimizer === 'adamw' ? 1e-3 : fineTune ? 0.01 : 0.1);
  const weightDecay = options.weightDecay ?? (options.optimizer === 'adamw' ? 0.05 : fineTune ? 1e-4 : 5e-4);
  return { lr, weightDecay };
}

/**
 * The model for a run: `arch` with the data's classes and channels; with `weights`, every
 * pretrained tensor but `fc`'s loaded (a new fc, initialised as torchvision does, for the
 * data's classes), the file's own class count and channels notwithstanding.
 */
export async function buildTrainModel(options: TrainOptions, data: TrainData): Promise<AnyResNet> {
  // Seeded: the same --seed gives the same initial weights (and so a resumable, repeatable run).
  const model = getModel(options.arch, { numClasses: data.classes.length, inChannels: data.inChannels, seed: options.seed });
  if (options.weights !== undefined) {
    const stateDict = await loadWeights(resolveWeights(options.arch, options.weights), { progress: process.stderr.isTTY });
    for (const key of [...stateDict.keys()]) if (key.startsWith('fc.')) stateDict.delete(key);
    const result = model.loadStateDict(stateDict, { strict: false });
    const missing = result.missingKeys.filter((k) => !k.startsWith('fc.'));
    if (missing.length || result.unexpectedKeys.length || result.mismatchedKeys.length) {
      const parts = [
        missing.length ? `${missing.length} missing (${missing.slice(0, 3).join(', ')})` : '',
        result.unexpectedKeys.length ? `${result.unexpectedKeys.length} unexpected (${result.unexpectedKeys.slice(0, 3).join(', ')})` : '',
        result.mismatchedKeys.length ? `${result.mismatchedKeys.length} mis-shaped (${result.mismatchedKeys.slice(0, 3).map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ')})` : '',
      ].filter(Boolean);
      const conv1 = stateDict.get('conv1.weight');
      const hint = conv1?.ndim === 4 && conv1.shape[1] === 1 && data.inChannels === 3 ? ' (the weights take grey images: add --grayscale)' : '';
      const prefixHint = stateDictHint(result);
      throw new Error(`--weights ${options.weights} does not fit ${options.arch} with ${data.inChannels} input channel(s): ${parts.join('; ')}${hint}${prefixHint ? ` (${prefixHint})` : ''}`);
    }
  }
  if (options.freezeBackbone) {
    if (options.weights === undefined) throw new RangeError('--freeze-backbone needs --weights: a backbone trained from scratch would stay at its random initialisation');
    model.requiresGrad_(false);
    model.fc.requiresGrad_(true);
  }
  return model;
}

/** The optimizer over the parameters that train, torchvision's way: norm layers and biases at weight decay 0. */
export function buildOptimizer(model: Module, options: TrainOptions): Optimizer<GroupOptions> {
  const { lr, weightDecay } = resolveRecipe(options);
  const groups = setWeightDecay(model, weightDecay, { normWeightDecay: 0, biasWeightDecay: 0 });
  if (groups.length === 0) throw new RangeError('no parameter requires a gradient: nothing to train');
  if (options.optimizer === 'adamw') return new AdamW(groups, { lr, weightDecay }) as unknown as Optimizer<GroupOptions>;
  return new SGD(groups, { lr, momentum: options.momentum, nesterov: options.nesterov && options.momentum > 0, weightDecay }) as unknown as Optimizer<GroupOptions>;
}

/** Linear warm-up from 1% of the lr, then cosine annealing to 0, both counted in steps. */
export function buildSchedule(optimizer: Optimizer<GroupOptions>, totalSteps: number, stepsPerEpoch: number, warmupEpochs: number): LRScheduler {
  const warmup = Math.min(Math.round(warmupEpochs * stepsPerEpoch), Math.floor(totalSteps / 10));
  const cosine = new CosineAnnealingLR(optimizer, Math.max(1, totalSteps - warmup));
  if (warmup < 1) return cosine;
  const linear = new LinearLR(optimizer, { startFactor: 0.01, totalIters: warmup });
  return new SequentialLR(optimizer, [linear, cosine], [warmup]);
}

interface ResumeState {
  version: 1;
  /** Epochs finished. */
  epoch: number;
  bestAccuracy: number;
  log: EpochRecord[];
  options: TrainOptions;
  optimizer: Omit<OptimizerStateDict, 'state'>;
  /** Which tensors of the file belong to which optimizer state entry: "index/name". */
  optimizerTensors: string[];
  scheduler: ReturnType<LRScheduler['stateDict']>;
}

async function saveResume(out: string, model: Module, optimizer: Optimizer<GroupOptions>, scheduler: LRScheduler, state: Omit<ResumeState, 'optimizer' | 'optimizerTensors' | 'scheduler'>): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [key, t] of model.stateDict()) tensors.set(`model.${key}`, t);
  const optimizerState = optimizer.stateDict();
  const optimizerTensors: string[] = [];
  for (const [index, entry] of Object.entries(optimizerState.state)) {
    for (const [name, t] of Object.entries(entry)) {
      optimizerTensors.push(`${index}/${name}`);
      tensors.set(`optimizer.${index}.${name}`, t);
    }
  }
  const resume: ResumeState = { ...state, optimizer: { param_groups: optimizerState.param_groups }, optimizerTensors, scheduler: scheduler.stateDict() };
  await writeFileAtomic(join(out, RUN_FILES.resume), writeSafetensors(tensors, { format: 'pt', 'resnet-ts-resume': JSON.stringify(resume) }));
}

async function loadResume(out: string): Promise<{ state: ResumeState; tensors: Map<string, Tensor> }> {
  const path = join(out, RUN_FILES.resume);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch {
    throw new Error(`--resume: ${path} not found (a run writes it at the end of each epoch)`);
  }
  const text = readSafetensorsMetadata(bytes)['resnet-ts-resume'];
  if (text === undefined) throw new Error(`--resume: ${path} was not written by resnet train`);
  return { state: JSON.parse(text) as ResumeState, tensors: readSafetensors(bytes) };
}

function plotLog(log: readonly EpochRecord[], title: string): string {
  return plotPanels(
    [
      {
        title: 'Loss',
        yLabel: 'cross-entropy',
        series: [
          { label: 'train', values: log.map((r) => r.trainLoss), color: '#1f77b4' },
          { label: 'validation', values: log.map((r) => r.valLoss), color: '#d62728', dashed: true },
        ],
      },
      {
        title: 'Accuracy',
        yLabel: 'top-1 accuracy (%)',
        series: [
          { label: 'train', values: log.map((r) => r.trainAccuracy * 100), color: '#1f77b4' },
          { label: 'validation', values: log.map((r) => r.valAccuracy * 100), color: '#d62728', dashed: true },
        ],
      },
    ],
    { x: log.map((r) => r.epoch), xLabel: 'epoch', title },
  );
}

export interface TrainResult {
  log: EpochRecord[];
  bestAccuracy: number;
  model: AnyResNet;
  classes: readonly string[];
}

/**
 * Trains as `options` say, writing the run's files to options.out after every epoch. With
 * `resume`, continues the run in options.out from its last finished epoch (the saved options
 * win over the given ones, except `epochs`, which may extend the run only if it was not
 * annealed yet — the schedule is part of the run).
 */
export async function train(given: TrainOptions, events: TrainEvents = {}, resume = false): Promise<TrainResult> {
  let options = given;
  let resumed: Awaited<ReturnType<typeof loadResume>> | null = null;
  if (resume) {
    resumed = await loadResume(given.out);
    options = { ...resumed.state.options, out: given.out };
  }
  await mkdir(options.out, { recursive: true });
  const data = await loadTrainData(options.data, { imageSize: options.imageSize, seed: options.seed, limit: options.limit, grayscale: options.grayscale });
  const loaders = makeLoaders(data, options.batchSize, options.seed);
  const model = await buildTrainModel(resume ? { ...options, weights: undefined, freezeBackbone: false } : options, data);
  if (resume && options.freezeBackbone) {
    model.requiresGrad_(false);
    model.fc.requiresGrad_(true);
  }
  const optimizer = buildOptimizer(model, options);
  const stepsPerEpoch = loaders.train.length;
  const scheduler = buildSchedule(optimizer, stepsPerEpoch * options.epochs, stepsPerEpoch, options.warmupEpochs);

  let startEpoch = 0;
  let bestAccuracy = -1;
  let log: EpochRecord[] = [];
  if (resumed) {
    const modelTensors = new Map<string, Tensor>();
    for (const [key, t] of resumed.tensors) if (key.startsWith('model.')) modelTensors.set(key.slice(6), t);
    model.loadStateDict(modelTensors);
    const state: OptimizerStateDict['state'] = {};
    for (const entry of resumed.state.optimizerTensors) {
      const [index, name] = entry.split('/');
      (state[Number(index)] ??= {})[name] = resumed.tensors.get(`optimizer.${index}.${name}`)!;
    }
    optimizer.loadStateDict({ state, param_groups: resumed.state.optimizer.param_groups });
    scheduler.loadStateDict(resumed.state.scheduler);
    startEpoch = resumed.state.epoch;
    bestAccuracy = resumed.state.bestAccuracy;
    log = resumed.state.log;
  }

  const meta = (epoch: number, accuracy: number): ModelMetadata => ({
    arch: options.arch, classes: data.classes, inChannels: data.inChannels, preprocess: data.preprocess, epoch, accuracy,
  });
  events.onStart?.({ epochs: options.epochs, startEpoch, stepsPerEpoch, trainImages: data.train.length, valImages: data.val.length, classes: data.classes });

  // The frozen backbone keeps its BatchNorm statistics: it runs in eval mode, fc trains.
  const setTrainMode = (): void => {
    model.train();
    if (options.freezeBackbone) {
      for (const m of model.modules()) if (m instanceof BatchNorm2d) m.eval();
    }
  };

  for (let epoch = startEpoch; epoch < options.epochs; epoch++) {
    setTrainMode();
    const started = performance.now();
    let lossSum = 0;
    let correct = 0;
    let images = 0;
    let step = 0;
    for await (const batch of loaders.train.epochBatches(epoch)) {
      const n = batch.images.shape[0];
      const logits = model.forward(batch.images);
      const loss = F.crossEntropy(logits, batch.targets, { labelSmoothing: options.labelSmoothing });
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      scheduler.step();
      const lossValue = loss.item();
      if (!Number.isFinite(lossValue)) throw new Error(`training diverged: loss ${lossValue} at epoch ${epoch + 1}, step ${step + 1} (try a lower --lr)`);
      lossSum += lossValue * n;
      correct += countCorrect(logits, batch.targets);
      images += n;
      step++;
      events.onStep?.({
        epoch: epoch + 1, step, steps: stepsPerEpoch, loss: lossSum / images, accuracy: correct / images,
        imagesPerSecond: images / ((performance.now() - started) / 1000), lr: optimizer.paramGroups[0].lr,
      });
    }
    const trainSeconds = (performance.now() - started) / 1000;
    events.onValidate?.({ epoch: epoch + 1 });
    const val = await evaluate(model, loaders.val);
    const record: EpochRecord = {
      epoch: epoch + 1,
      trainLoss: images ? lossSum / images : 0,
      trainAccuracy: images ? correct / images : 0,
      valLoss: val.loss,
      valAccuracy: val.accuracy,
      lr: optimizer.paramGroups[0].lr,
      seconds: (performance.now() - started) / 1000,
      imagesPerSecond: images / trainSeconds,
    };
    log.push(record);
    const best = val.accuracy > bestAccuracy;
    if (best) bestAccuracy = val.accuracy;

    const stateDict = model.stateDict();
    if (best) await saveWeights(options.out, 'best', stateDict, meta(epoch + 1, val.accuracy));
    await saveWeights(options.out, 'last', stateDict, meta(epoch + 1, val.accuracy));
    await saveResume(options.out, model, optimizer, scheduler, { version: 1, epoch: epoch + 1, bestAccuracy, log, options });
    const recipe = resolveRecipe(options);
    await writeFileAtomic(join(options.out, RUN_FILES.log), `${JSON.stringify({ options: { ...options, ...recipe }, classes: data.classes, epochs: log }, null, 2)}\n`);
    await writeFileAtomic(join(options.out, RUN_FILES.plot), plotLog(log, `${options.arch} on ${data.source}`));
    events.onEpoch?.(record, best);
  }
  return { log, bestAccuracy, model, classes: data.classes };
}

/** A model saved by a training run, ready for inference: the architecture, classes and preprocessing from its metadata. */
export async function loadTrainedModel(path: string): Promise<{ model: AnyResNet; meta: ModelMetadata }> {
  const trained = trainedModelFrom(await readFile(path));
  if (!trained) throw new Error(`${path} has no resnet-ts training metadata (written by resnet train)`);
  return trained;
}

/** The model in a safetensors file's bytes, in eval mode, when a training run wrote it; null for any other file. */
export function trainedModelFrom(bytes: Uint8Array): { model: AnyResNet; meta: ModelMetadata } | null {
  const meta = decodeModelMetadata(readSafetensorsMetadata(bytes));
  if (!meta) return null;
  const model = getModel(meta.arch, { numClasses: meta.classes.length, inChannels: meta.inChannels });
  model.loadStateDict(readSafetensors(bytes));
  model.eval();
  return { model, meta };
}
