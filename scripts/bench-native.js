#!/usr/bin/env node
// Times the native backend (after `npm run build` and the addon build): GFLOP/s of the
// convolution GEMM on a 512³ GEMM and ResNet-50's convolution shapes, then ms per eval
// forward of whole models at batch 1, 3×224×224. Each figure is the fastest of several runs
// (the machine may be shared). Usage:
//   node scripts/bench-native.js [--threads 1,2] [--isa avx2-fma] [--models resnet18,resnet50] [--no-convs]
//                                [--seconds 1.5] [--cpu-time]

import { parseArgs } from 'node:util';
import { createNativeBackend } from '../dist/src/backends/native/index.js';
import { Tensor, getModel, setBackend } from '../dist/src/index.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    isa: { type: 'string' },
    models: { type: 'string', default: 'resnet18,resnet50' },
    'no-convs': { type: 'boolean', default: false },
    seconds: { type: 'string', default: '1.5' },
    'cpu-time': { type: 'boolean', default: false },
  },
});
const threadCounts = values.threads.split(',').map(Number);
const budget = Number(values.seconds);

function random(shape) {
  const t = Tensor.zeros(shape);
  for (let i = 0; i < t.f32.length; i++) t.f32[i] = Math.random() * 2 - 1;
  return t;
}

/**
 * Fastest seconds per call of fn over about `budget` seconds (at least 3 calls, after a
 * warm-up). With --cpu-time, the process's CPU time instead of the wall clock: on a machine
 * others are loading, that counts only the time this process ran (meaningful for 1 thread;
 * with more, it sums the threads, spinning included).
 */
function fastest(fn) {
  fn();
  let best = Infinity;
  const start = performance.now();
  for (let i = 0; i < 3 || performance.now() - start < budget * 1000; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, values['cpu-time'] ? (c.user + c.system) / 1000 : performance.now() - t0);
    if (i > 500) break;
  }
  return best / 1000;
}

// [name, x shape, out channels, kernel, stride, padding, groups]
const convs = [
  ['GEMM 512×512×512 (1×1 on 16×32)', [1, 512, 16, 32], 512, 1, 1, 0, 1],
  ['conv1 7×7/2 3→64 @224', [1, 3, 224, 224], 64, 7, 2, 3, 1],
  ['layer1 1×1 64→64 @56', [1, 64, 56, 56], 64, 1, 1, 0, 1],
  ['layer1 3×3 64→64 @56', [1, 64, 56, 56], 64, 3, 1, 1, 1],
  ['layer1 1×1 64→256 @56', [1, 64, 56, 56], 256, 1, 1, 0, 1],
  ['layer1 1×1 256→64 @56', [1, 256, 56, 56], 64, 1, 1, 0, 1],
  ['layer2 3×3/2 128→128 @56', [1, 128, 56, 56], 128, 3, 2, 1, 1],
  ['layer2 3×3 128→128 @28', [1, 128, 28, 28], 128, 3, 1, 1, 1],
  ['layer2 1×1/2 256→512 @56', [1, 256, 56, 56], 512, 1, 2, 0, 1],
  ['layer2 1×1 512→128 @28', [1, 512, 28, 28], 128, 1, 1, 0, 1],
  ['layer3 3×3 256→256 @14', [1, 256, 14, 14], 256, 3, 1, 1, 1],
  ['layer3 1×1 256→1024 @14', [1, 256, 14, 14], 1024, 1, 1, 0, 1],
  ['layer3 1×1 1024→256 @14', [1, 1024, 14, 14], 256, 1, 1, 0, 1],
  ['layer4 3×3 512→512 @7', [1, 512, 7, 7], 512, 3, 1, 1, 1],
  ['layer4 1×1 512→2048 @7', [1, 512, 7, 7], 2048, 1, 1, 0, 1],
  ['layer4 1×1 2048→512 @7', [1, 2048, 7, 7], 512, 1, 1, 0, 1],
  ['resnext g32 3×3 128 @56', [1, 128, 56, 56], 128, 3, 1, 1, 32],
  ['resnext g32 3×3 512 @14', [1, 512, 14, 14], 512, 3, 1, 1, 32],
  ['resnext g32 3×3 1024 @7', [1, 1024, 7, 7], 1024, 3, 1, 1, 32],
];

for (const threads of threadCounts) {
  const backend = createNativeBackend({ threads, isa: values.isa });
  console.log(`\n# native ${backend.isa()}, ${threads} thread${threads > 1 ? 's' : ''}`);
  if (!values['no-convs']) {
    for (const [name, xShape, outChannels, k, stride, pad, groups] of convs) {
      const x = random(xShape);
      const weight = random([outChannels, xShape[1] / groups, k, k]);
      const bias = random([outChannels]);
      const p = { stride: [stride, stride], padding: [pad, pad], dilation: [1, 1], groups };
      const outH = Math.floor((xShape[2] + 2 * pad - k) / stride) + 1;
      const outW = Math.floor((xShape[3] + 2 * pad - k) / stride) + 1;
      const flops = 2 * outChannels * outH * outW * (xShape[1] / groups) * k * k;
      const s = fastest(() => backend.conv2d(x, weight, bias, p, outH, outW, { relu: true }));
      console.log(`${name.padEnd(34)} ${(s * 1e3).toFixed(3).padStart(8)} ms ${(flops / s / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
    }
  }
  setBackend('native').setThreads?.(threads);
  for (const name of values.models.split(',').filter(Boolean)) {
    const model = getModel(name).eval();
    model.requiresGrad_(false); // inference: the eval plan (parameters that require gradients would record a graph instead)
    const x = random([1, 3, 224, 224]);
    const s = fastest(() => model.forward(x));
    console.log(`${`${name} forward, batch 1`.padEnd(34)} ${(s * 1e3).toFixed(1).padStart(8)} ms`);
  }
}
