// `resnet classify <images...>`: torchvision's preprocessing, one batched eval forward, and the
// top-k ImageNet categories with their softmax probabilities for each image.

import { InvalidArgumentError, type Command } from 'commander';
import { parsePositiveInt } from './args.js';
import type { Tensor } from '../core/tensor.js';
import { ImageClassification } from '../preprocess/transforms.js';
import { ImageFileError, readImage } from '../preprocess/decode.js';
import type { RgbImage } from '../preprocess/image.js';
import { IMAGENET_CATEGORIES } from '../weights/imagenet.generated.js';
import { resolveWeights } from '../weights/load.js';
import { ShapeError } from '../ops/functional.js';
import { noGrad } from '../ops/autograd.js';
import { buildModelWithWeights, type ModelCommandContext, type ModelFlags } from './model.js';

interface ClassifyFlags extends ModelFlags {
  arch: string;
  weights: string;
  topk: number;
  batch: number;
  resize?: number;
  crop?: number;
  json?: boolean;
}

export interface Prediction {
  index: number;
  category: string;
  probability: number;
}

/** Softmax over each row of logits (N, classes), then the k most probable classes per row. */
export function topK(logits: Tensor, k: number, categories: readonly string[]): Prediction[][] {
  const [batch, classes] = logits.shape;
  const data = logits.f32;
  const rows: Prediction[][] = [];
  for (let n = 0; n < batch; n++) {
    const row = data.subarray(n * classes, (n + 1) * classes);
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, k);
    rows.push(order.map((index) => ({ index, category: categories[index] ?? `class ${index}`, probability: Math.exp(row[index] - max) / sum })));
  }
  return rows;
}

async function classifyCommand(images: string[], opts: ClassifyFlags, context: ModelCommandContext): Promise<void> {
  const arch = context.parseArch(opts.arch);
  let source;
  try {
    source = resolveWeights(arch, opts.weights);
  } catch (e) {
    throw context.error((e as Error).message, context.exit.usage);
  }
  const descriptor = typeof source === 'string' ? undefined : source;
  const model = await buildModelWithWeights(arch, opts, context);
  const transforms = descriptor?.transforms;
  const preprocess = new ImageClassification({
    resizeSize: opts.resize ?? transforms?.resizeSize ?? 256,
    cropSize: opts.crop ?? transforms?.cropSize ?? 224,
    mean: transforms?.mean,
    std: transforms?.std,
  });
  const categories = descriptor?.meta.categories ?? (model.fc.outFeatures === IMAGENET_CATEGORIES.length ? IMAGENET_CATEGORIES : []);

  const results: { image: string; predictions: Prediction[] }[] = [];
  for (let start = 0; start < images.length; start += opts.batch) {
    const paths = images.slice(start, start + opts.batch);
    const decoded: RgbImage[] = [];
    for (const path of paths) {
      try {
        decoded.push(await readImage(path));
      } catch (e) {
        if (e instanceof ImageFileError) throw context.error(e.message, context.exit.file);
        throw e;
      }
    }
    let logits: Tensor;
    try {
      logits = noGrad(() => model.call(preprocess.forward(decoded)));
    } catch (e) {
      if (e instanceof ShapeError) throw context.error(e.message, context.exit.input);
      throw e;
    }
    topK(logits, opts.topk, categories).forEach((predictions, i) => results.push({ image: paths[i], predictions }));
  }
  for (const r of results) {
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ arch, ...r })}\n`);
    } else {
      process.stdout.write(`${r.image}\n`);
      for (const p of r.predictions) process.stdout.write(`  ${(p.probability * 100).toFixed(2).padStart(6)}%  ${p.category} (${p.index})\n`);
    }
  }
}

/** Adds `classify` to the `resnet` program. */
export function registerClassifyCommand(program: Command, context: ModelCommandContext): Command {
  const command = program
    .command('classify')
    .description('top-k ImageNet categories with probabilities for each image (JPEG, PNG, WebP), batched')
    .argument('<images...>', 'image files')
    .option('--arch <arch>', 'architecture', 'resnet50')
    .option('--weights <file|url|name>', 'torchvision weights name (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT), .pth/.safetensors file or URL', 'DEFAULT')
    .option('--topk <k>', 'categories per image', parsePositiveInt('--topk'), 5)
    .option('--batch <n>', 'images per forward pass', parsePositiveInt('--batch'), 8)
    .option('--resize <n>', 'resize the shorter side (default: the weights\' preset, else 256)', parsePositiveInt('--resize'))
    .option('--crop <n>', 'center crop (default: the weights\' preset, else 224)', parsePositiveInt('--crop'))
    .option('--json', 'one JSON line per image');
  return context
    .addModelOptions(command)
    .addHelpText('after', context.exitHelp)
    .action((images: string[], opts: ClassifyFlags) => classifyCommand(images, opts, context));
}
