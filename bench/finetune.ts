// The "Fine-tuning" section of BENCHMARKS.md: a ResNet-20 for grey 28×28 images pretrained by
// `resnet train` on Fashion-MNIST's classes 0-4, then fine-tuned from that checkpoint's .pth on
// classes 5-9 — whole, and with --freeze-backbone — by resnet-ts (`resnet train --weights`, as a
// user runs it) and by PyTorch (bench/torch_finetune.py, the same recipe in torch and
// torchvision) on the same PNG folders (bench/finetune_data.ts), and the validation accuracy
// each reaches. Each run is a process of its own; the engines run one after the other.
//
// `node dist/bench/run.js --engines finetune` runs this section alone and merges it into the
// existing BENCHMARKS.md (the other sections stay as they were measured).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend } from '../src/backends/index.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_ROOT } from '../src/data/index.js';
import { backendIsa } from '../src/tools/bench.js';
import { loadTrainData } from '../src/train/data.js';
import { resolveRecipe, type EpochRecord } from '../src/train/trainer.js';
import { DEFAULT_SIZES, FINETUNE_CLASSES, PRETRAIN_CLASSES, renderBenchmarkFolders, type BenchmarkFolders } from './finetune_data.js';
import { childrenCpuSeconds, cpuDescription, gitDescription, machineBusySeconds } from './system.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const resnetBin = join(repoRoot, 'bin', 'resnet.js');
const torchScript = join(repoRoot, 'bench', 'torch_finetune.py');

export const SECTION_TITLE = '## Fine-tuning';
/** Other processes' load (cores, on average) above which the section says the machine was shared: a quiet one shows a few hundredths. */
const SHARED_CORES = 0.1;

export interface FineTuneConfig {
  /** Scratch folder for the data and the runs' files. */
  workDir: string;
  sizes: typeof DEFAULT_SIZES;
  pretrainEpochs: number;
  pretrainBatchSize: number;
  /** Fine-tuning epochs and batch size (both engines). */
  epochs: number;
  batchSize: number;
  /** One fine-tuning run per seed, engine and mode. */
  seeds: number[];
  threads: number;
  /** The Python with torch and torchvision, or null (the PyTorch column is then empty). */
  python: string | null;
  /** Why PyTorch does not run, when python is null. */
  pythonMissing?: string;
  /** A run still going after this long is stopped. */
  timeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_FINETUNE = { sizes: DEFAULT_SIZES, pretrainEpochs: 3, pretrainBatchSize: 128, epochs: 15, batchSize: 64, seeds: [0, 1] };

export type Mode = 'full' | 'frozen';

export interface FineTuneRun {
  engine: 'resnet-ts' | 'pytorch';
  /** 'pretrain' for the pretraining run (resnet-ts only). */
  mode: Mode | 'pretrain';
  seed: number;
  epochs: EpochRecord[];
  /** From the spawn to the process's exit: start-up, data listing, training, validation, checkpoints. */
  wallSeconds: number;
  error?: string;
  /** PyTorch's versions and threads. */
  details?: Record<string, unknown>;
}

export interface FineTuneResult {
  /** Why the section was not measured. */
  skipped?: string;
  folders?: BenchmarkFolders;
  pretrain?: FineTuneRun;
  runs: FineTuneRun[];
  recipe?: { lr: number; weightDecay: number; momentum: number; warmupEpochs: number; labelSmoothing: number; pretrainLr: number; pretrainWeightDecay: number };
  preprocess?: { resize: number; crop: number; mean: readonly number[]; std: readonly number[] };
  /** The backend `resnet train` picks here (--backend auto) and its kernels. */
  backend?: string;
  pytorchSkipped: string | null;
  config: Omit<FineTuneConfig, 'log' | 'python' | 'workDir'>;
  load: { start: number[]; end: number[] };
  /** Cores other processes kept busy, on average over the section. */
  otherLoadCores: number | null;
  started: Date;
  seconds: number;
}

/**
 * Runs `command` and collects the JSON objects it prints on stdout, one a line; stderr goes to
 * `log` line by line. Resolves when it exits (or is stopped after timeoutMs).
 */
function runJsonLines(
  command: string, args: string[], options: { timeoutMs: number; log: (line: string) => void; onRecord?: (record: Record<string, unknown>) => void },
): Promise<{ records: Record<string, unknown>[]; code: number | null; timedOut: boolean; wallSeconds: number; stderrTail: string[] }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const records: Record<string, unknown>[] = [];
    const stderrTail: string[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void) => {
      let buffer = '';
      stream.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          onLine(buffer.slice(0, newline).trimEnd());
          buffer = buffer.slice(newline + 1);
        }
      });
      stream.on('end', () => buffer && onLine(buffer));
    };
    lines(child.stdout!, (line) => {
      if (!line.startsWith('{')) return;
      const record = JSON.parse(line) as Record<string, unknown>;
      records.push(record);
      options.onRecord?.(record);
    });
    lines(child.stderr!, (line) => {
      if (!line.trim()) return;
      options.log(`    ${line}`);
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ records, code, timedOut, wallSeconds: (performance.now() - started) / 1000, stderrTail });
    });
  });
}

const isEpoch = (r: Record<string, unknown>): boolean => typeof r.epoch === 'number' && typeof r.valAccuracy === 'number';

/** One `resnet train` run (pretraining, or fine-tuning from `weights`), as a user starts it. */
async function resnetTrain(
  mode: FineTuneRun['mode'], seed: number, data: string, out: string, flags: string[], config: FineTuneConfig,
): Promise<FineTuneRun> {
  const args = [resnetBin, 'train', '--arch', 'resnet20', '--data', data, '--grayscale', '--image-size', '28', '--seed', String(seed), '--threads', String(config.threads), '--out', out, '--json', ...flags];
  config.log(`  $ resnet ${args.slice(1).join(' ')}`);
  const r = await runJsonLines(process.execPath, args, { timeoutMs: config.timeoutMs, log: config.log });
  const run: FineTuneRun = { engine: 'resnet-ts', mode, seed, epochs: r.records.filter(isEpoch) as unknown as EpochRecord[], wallSeconds: r.wallSeconds };
  if (r.code !== 0) run.error = r.timedOut ? `stopped after ${config.timeoutMs / 1000} s` : `exit ${r.code}: ${r.stderrTail.at(-1) ?? ''}`;
  return run;
}

/** One bench/torch_finetune.py run. */
async function torchFineTune(mode: Mode, seed: number, task: Record<string, unknown>, config: FineTuneConfig): Promise<FineTuneRun> {
  const full = { ...task, seed, freezeBackbone: mode === 'frozen' };
  config.log(`  $ ${config.python} bench/torch_finetune.py '${JSON.stringify(full)}'`);
  const r = await runJsonLines(config.python!, [torchScript, JSON.stringify(full)], {
    timeoutMs: config.timeoutMs,
    log: config.log,
    onRecord: (record) => isEpoch(record) && config.log(`    pytorch epoch ${record.epoch as number}: val acc ${((record.valAccuracy as number) * 100).toFixed(2)}%`),
  });
  const run: FineTuneRun = { engine: 'pytorch', mode, seed, epochs: r.records.filter(isEpoch) as unknown as EpochRecord[], wallSeconds: r.wallSeconds };
  const last = r.records.at(-1);
  if (typeof last?.error === 'string') run.error = last.error.trim().split('\n').at(-1);
  else if (r.code !== 0 || !last?.done) run.error = r.timedOut ? `stopped after ${config.timeoutMs / 1000} s` : `exit ${r.code}: ${r.stderrTail.at(-1) ?? ''}`;
  else run.details = last;
  return run;
}

/** Renders the data, pretrains once, then fine-tunes per seed: resnet-ts and PyTorch, whole and with the backbone frozen. */
export async function measureFineTuning(config: FineTuneConfig): Promise<FineTuneResult> {
  const started = new Date();
  const busyStart = machineBusySeconds();
  const ownStart = process.cpuUsage();
  const childrenStart = childrenCpuSeconds();
  const { log, python: _python, workDir: _workDir, ...kept } = config;
  const result: FineTuneResult = {
    runs: [], pytorchSkipped: config.python ? null : (config.pythonMissing ?? 'no Python with torch'), config: kept,
    load: { start: loadavg(), end: [] }, otherLoadCores: null, started, seconds: 0,
  };
  const finish = (): FineTuneResult => {
    result.load.end = loadavg();
    result.seconds = (Date.now() - started.getTime()) / 1000;
    const busyEnd = machineBusySeconds();
    const childrenEnd = childrenCpuSeconds();
    if (busyStart !== null && busyEnd !== null && childrenStart !== null && childrenEnd !== null) {
      const own = process.cpuUsage(ownStart);
      const other = busyEnd - busyStart - (own.user + own.system) / 1e6 - (childrenEnd - childrenStart);
      result.otherLoadCores = Math.max(0, other / result.seconds);
    }
    return result;
  };
  if (!existsSync(FASHION_MNIST_DEBIAN_ROOT)) {
    result.skipped = `${FASHION_MNIST_DEBIAN_ROOT} missing (Debian's dataset-fashion-mnist)`;
    return finish();
  }

  log(`finetune: rendering the PNG folders in ${config.workDir}`);
  const folders = await renderBenchmarkFolders(config.workDir, config.sizes);
  result.folders = folders;
  const backend = setBackend('auto');
  result.backend = `${backend.name}${backendIsa(backend) ? `, ${backendIsa(backend)}` : ''}`;

  const momentum = 0.9;
  const warmupEpochs = 1;
  const labelSmoothing = 0;
  // The CLI's defaults from scratch and for fine-tuning, given to both engines explicitly.
  const pretrainRecipe = resolveRecipe({ optimizer: 'sgd' });
  const fineTuneRecipe = resolveRecipe({ optimizer: 'sgd', weights: 'pretrained' });
  result.recipe = { ...fineTuneRecipe, momentum, warmupEpochs, labelSmoothing, pretrainLr: pretrainRecipe.lr, pretrainWeightDecay: pretrainRecipe.weightDecay };
  const recipeFlags = (recipe: { lr: number; weightDecay: number }, epochs: number, batchSize: number) => [
    '--epochs', String(epochs), '--batch-size', String(batchSize), '--optimizer', 'sgd', '--lr', String(recipe.lr), '--weight-decay', String(recipe.weightDecay),
    '--momentum', String(momentum), '--warmup-epochs', String(warmupEpochs), '--label-smoothing', String(labelSmoothing),
  ];

  log(`finetune: pretraining resnet20 on ${folders.pretrain.classNames.join(', ')} (${folders.pretrain.train} images, ${config.pretrainEpochs} epochs)`);
  const pretrainOut = join(config.workDir, 'runs', 'pretrain');
  result.pretrain = await resnetTrain('pretrain', 0, folders.pretrain.root, pretrainOut, recipeFlags(pretrainRecipe, config.pretrainEpochs, config.pretrainBatchSize), config);
  if (result.pretrain.error) {
    result.skipped = `pretraining failed: ${result.pretrain.error}`;
    return finish();
  }
  const weights = join(pretrainOut, 'last.pth');

  const preprocess = (await loadTrainData(folders.finetune.root, { imageSize: 28, grayscale: true })).preprocess;
  result.preprocess = preprocess;
  const torchTask = {
    arch: 'resnet20', weights, data: folders.finetune.root, grayscale: true, imageSize: preprocess.crop, resize: preprocess.resize, mean: preprocess.mean, std: preprocess.std,
    epochs: config.epochs, batchSize: config.batchSize, lr: fineTuneRecipe.lr, weightDecay: fineTuneRecipe.weightDecay, momentum, nesterov: true,
    warmupEpochs, labelSmoothing, threads: config.threads,
  };
  for (const seed of config.seeds) {
    for (const mode of ['full', 'frozen'] as const) {
      log(`finetune: ${mode === 'full' ? 'full fine-tuning' : 'frozen backbone'}, seed ${seed}, resnet-ts`);
      const flags = ['--weights', weights, ...(mode === 'frozen' ? ['--freeze-backbone'] : []), ...recipeFlags(fineTuneRecipe, config.epochs, config.batchSize)];
      result.runs.push(await resnetTrain(mode, seed, folders.finetune.root, join(config.workDir, 'runs', `${mode}-${seed}`), flags, config));
      if (config.python) {
        log(`finetune: ${mode === 'full' ? 'full fine-tuning' : 'frozen backbone'}, seed ${seed}, PyTorch`);
        result.runs.push(await torchFineTune(mode, seed, torchTask, config));
      }
    }
  }
  return finish();
}

// ---------------------------------------------------------------- the section

const percent = (x: number | undefined): string => (x === undefined ? '—' : (x * 100).toFixed(2));
const best = (run: FineTuneRun | undefined): number | undefined => (run?.epochs.length ? Math.max(...run.epochs.map((e) => e.valAccuracy)) : undefined);
const last = (run: FineTuneRun | undefined): number | undefined => run?.epochs.at(-1)?.valAccuracy;
/** Images per second over the training steps of every epoch (validation excluded): the harmonic mean of the epochs'. */
const trainRate = (run: FineTuneRun | undefined): number | undefined =>
  run?.epochs.length ? run.epochs.length / run.epochs.reduce((sum, e) => sum + 1 / e.imagesPerSecond, 0) : undefined;
const mean = (values: (number | undefined)[]): number | undefined =>
  values.every((v) => v !== undefined) && values.length ? (values as number[]).reduce((a, b) => a + b, 0) / values.length : undefined;

function cell(run: FineTuneRun | undefined, value: (run: FineTuneRun) => string): string {
  if (!run) return '—';
  if (run.error) return `failed: ${run.error.replace(/\|/g, '\\|').slice(0, 120)}`;
  return value(run);
}

/** The section's Markdown. */
export function fineTuningSection(r: FineTuneResult, command: string): string[] {
  const L = [SECTION_TITLE, ''];
  const when = `${r.started.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  L.push(`Measured by \`${command}\` on ${when}, in ${Math.round(r.seconds)} s; resnet-ts ${gitDescription(repoRoot)}; ${cpuDescription()}, ${availableParallelism()} logical cores.`, '');
  if (r.skipped) {
    L.push(`Not measured: ${r.skipped}.`, '');
    return L;
  }
  const { config, folders, recipe, preprocess, pretrain } = r;
  const names = (labels: readonly number[]) => labels.map((l) => FASHION_MNIST_CLASSES[l]).join(', ');
  L.push(
    `A ResNet-20 (He et al. 2015, §4.2) for grey 28×28 images — one input channel — is pretrained by \`resnet train\` on Fashion-MNIST's classes 0-4 (${names(PRETRAIN_CLASSES)}), ` +
      `then its \`last.pth\` is fine-tuned on classes 5-9 (${names(FINETUNE_CLASSES)}) by each engine with the same recipe, with a new \`fc\` for the 5 classes: ` +
      '"full" trains every parameter; "frozen" (`--freeze-backbone`) trains only `fc`, every BatchNorm in eval mode with the statistics it was loaded with.',
    '',
  );
  L.push(`- Data (\`bench/finetune_data.ts\`, from Debian's dataset-fashion-mnist, the first images of each class in the files' order, written as 28×28 grey PNG folders): pretraining ${config.sizes.pretrainTrain} training images a class from the training split and ${config.sizes.pretrainVal} validation images a class from the test split (${folders!.pretrain.train} and ${folders!.pretrain.val}); fine-tuning ${config.sizes.finetuneTrain} and ${config.sizes.finetuneVal} a class (${folders!.finetune.train} training, ${folders!.finetune.val} validation images).`);
  L.push(`- Preprocessing, both engines (\`--grayscale --image-size ${preprocess!.crop}\`): training Grayscale(1), RandomResizedCrop(${preprocess!.crop}) (scale 0.08-1, ratio 3/4-4/3), RandomHorizontalFlip, ToTensor, Normalize(${preprocess!.mean.map((m) => m.toFixed(4))}, ${preprocess!.std.map((s) => s.toFixed(4))}); validation Grayscale(1), Resize(${preprocess!.resize}), CenterCrop(${preprocess!.crop}), ToTensor, Normalize.`);
  L.push(`- Pretraining: \`resnet train\` from scratch, ${config.pretrainEpochs} epoch${config.pretrainEpochs === 1 ? '' : 's'}, batch ${config.pretrainBatchSize}, SGD lr ${recipe!.pretrainLr}, weight decay ${recipe!.pretrainWeightDecay} (the CLI's from-scratch defaults), seed 0; validation accuracy ${cell(pretrain, (p) => `**${percent(last(p))}%** after the last epoch (best ${percent(best(p))}%)`)}, ${pretrain ? `${pretrain.wallSeconds.toFixed(0)} s, ${trainRate(pretrain)?.toFixed(0) ?? '—'} training images/s` : ''}.`);
  L.push(`- Fine-tuning recipe, both engines: ${config.epochs} epoch${config.epochs === 1 ? '' : 's'}, batch ${config.batchSize} (the last short batch dropped), SGD with Nesterov momentum ${recipe!.momentum}, lr ${recipe!.lr}, weight decay ${recipe!.weightDecay} on weights only (BatchNorm parameters and biases at 0, torchvision's groups), a linear warm-up of ${recipe!.warmupEpochs} epoch from 1% of the lr then cosine annealing to 0, stepped every iteration; cross-entropy, label smoothing ${recipe!.labelSmoothing}; the same initial \`fc\` distribution (torch's Linear init) from each engine's own seeded generator; seeds ${config.seeds.join(', ')} (the data order and augmentation draws are each engine's own). ${config.threads} threads: resnet-ts \`resnet train --threads ${config.threads}\` (backend ${r.backend}); PyTorch \`bench/torch_finetune.py\` (torchvision's ImageFolder and transforms, eager, \`torch.set_num_threads(${config.threads})\`, DataLoader without worker processes).`);
  L.push('- Validation accuracy: after the last epoch, and the best over the epochs (in parentheses). Wall: from the process\'s spawn to its exit (start-up, training, validation after every epoch; resnet-ts also writes its checkpoints). Images/s: training steps only.');
  L.push('');

  const torchRuns = r.runs.filter((run) => run.engine === 'pytorch');
  L.push('| mode | seed | resnet-ts val acc % | PyTorch val acc % | resnet-ts wall s | PyTorch wall s | resnet-ts train images/s | PyTorch train images/s |');
  L.push('|:---|---:|---:|---:|---:|---:|---:|---:|');
  for (const mode of ['full', 'frozen'] as const) {
    const label = mode === 'full' ? 'full fine-tuning' : 'frozen backbone';
    const ours = r.runs.filter((run) => run.engine === 'resnet-ts' && run.mode === mode);
    const theirs = r.runs.filter((run) => run.engine === 'pytorch' && run.mode === mode);
    for (const seed of config.seeds) {
      const o = ours.find((run) => run.seed === seed);
      const t = theirs.find((run) => run.seed === seed);
      const acc = (run: FineTuneRun) => `**${percent(last(run))}** (${percent(best(run))})`;
      const torchCell = (value: (run: FineTuneRun) => string) => (r.pytorchSkipped ? 'not run' : cell(t, value));
      L.push(`| ${label} | ${seed} | ${cell(o, acc)} | ${torchCell(acc)} | ${cell(o, (run) => run.wallSeconds.toFixed(1))} | ${torchCell((run) => run.wallSeconds.toFixed(1))} | ${cell(o, (run) => trainRate(run)!.toFixed(0))} | ${torchCell((run) => trainRate(run)!.toFixed(0))} |`);
    }
    if (config.seeds.length > 1) {
      const m = (runs: FineTuneRun[], f: (run: FineTuneRun) => number | undefined) => (runs.length === config.seeds.length && runs.every((run) => !run.error) ? mean(runs.map(f)) : undefined);
      L.push(`| ${label}, mean | | ${percent(m(ours, last))} (${percent(m(ours, best))}) | ${percent(m(theirs, last))} (${percent(m(theirs, best))}) | ${m(ours, (run) => run.wallSeconds)?.toFixed(1) ?? '—'} | ${m(theirs, (run) => run.wallSeconds)?.toFixed(1) ?? '—'} | ${m(ours, trainRate)?.toFixed(0) ?? '—'} | ${m(theirs, trainRate)?.toFixed(0) ?? '—'} |`);
    }
  }
  L.push('');

  // Validation accuracy by epoch (the first seed): the two engines' curves side by side.
  const seed = config.seeds[0];
  const columns = (['full', 'frozen'] as const).flatMap((mode) => (['resnet-ts', 'pytorch'] as const).map((engine) => r.runs.find((run) => run.engine === engine && run.mode === mode && run.seed === seed)));
  const epochs = Math.max(0, ...columns.map((run) => run?.epochs.length ?? 0));
  if (epochs) {
    L.push(`Validation accuracy (%) after each epoch, seed ${seed}, and the learning rate at the epoch's end:`, '');
    L.push('| epoch | full: resnet-ts | full: PyTorch | frozen: resnet-ts | frozen: PyTorch | lr: resnet-ts | lr: PyTorch |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (let e = 0; e < epochs; e++) {
      const lr = (engine: FineTuneRun['engine']) => columns.find((run) => run?.engine === engine && run.epochs[e])?.epochs[e].lr;
      const lrText = (x: number | undefined) => (x === undefined ? '—' : x.toExponential(4));
      L.push(`| ${e + 1} | ${columns.map((run) => percent(run?.epochs[e]?.valAccuracy)).join(' | ')} | ${lrText(lr('resnet-ts'))} | ${lrText(lr('pytorch'))} |`);
    }
    L.push('');
  }
  const torchVersion = torchRuns.find((run) => run.details)?.details;
  if (torchVersion) L.push(`PyTorch ${torchVersion.version as string}, torchvision ${torchVersion.torchvision as string}, ${torchVersion.numThreads as number} threads.`, '');
  if (r.pytorchSkipped) L.push(`PyTorch was not run: ${r.pytorchSkipped}.`, '');
  const busy = r.otherLoadCores !== null && r.otherLoadCores > SHARED_CORES;
  L.push(
    `Load average (1, 5, 15 min; the benchmark's own threads count in it) at the section's start ${r.load.start.map((x) => x.toFixed(2)).join(', ')}, at its end ${r.load.end.map((x) => x.toFixed(2)).join(', ')}; ` +
      `other processes kept ${r.otherLoadCores === null ? '? (no /proc/stat)' : r.otherLoadCores.toFixed(2)} cores busy on average meanwhile (/proc/stat, the benchmark's own processes subtracted).` +
      (busy ? ' **The machine was shared with other work during this run**: the times and images/s are lower than this machine gives when quiet (the accuracies do not depend on it).' : ''),
  );
  L.push('');
  return L;
}

/** What a whole `npm run bench` report says of its figures, and what it says once sections were measured apart. */
export const WHOLE_RUN = 'Every figure below was measured in that run; nothing is copied from elsewhere.';
const MERGED_RUNS = 'Every figure below was measured in that run, except the sections that name a later run of their own (measured alone and merged in); nothing is copied from elsewhere.';

/** `markdown` with the section titled section[0] (its `## ` line) replaced by `section`, or `section` appended where it has none. */
export function mergeSection(markdown: string, section: string[]): string {
  // The report's opening line claims one run for every figure: no longer, once a section is merged.
  markdown = markdown.replace(WHOLE_RUN, MERGED_RUNS);
  // The section's own title (its first line) says which one it replaces.
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l === section[0]);
  const text = section.join('\n');
  if (start < 0) return `${markdown.replace(/\n*$/, '\n\n')}${text}`;
  let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  if (end < 0) end = lines.length;
  return [...lines.slice(0, start), ...section, ...lines.slice(end)].join('\n').replace(/\n*$/, '\n');
}

/** The scratch folder of the benchmark's data and runs. */
export const defaultWorkDir = (): string => join(tmpdir(), 'resnet-ts-finetune');

/** Measures the section and merges it into `out` (a file that does not exist yet gets the section alone). */
export async function runFineTuningAlone(config: FineTuneConfig, out: string, command: string): Promise<FineTuneResult> {
  const result = await measureFineTuning(config);
  const section = fineTuningSection(result, command);
  const existing = existsSync(out) ? readFileSync(out, 'utf8') : '# Benchmarks\n';
  await writeFile(out, mergeSection(existing, section));
  await writeFile(join(repoRoot, 'bench', 'results-finetune.json'), `${JSON.stringify(result, null, 1)}\n`);
  config.log(`finetune: merged the ${SECTION_TITLE.slice(3)} section into ${out}, the measurements in bench/results-finetune.json (${Math.round(result.seconds)} s)`);
  return result;
}
