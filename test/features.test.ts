// Intermediate outputs: extractFeatures against the full forward pass and the module-by-module
// path, its early stop, featureInfo against the traced shapes, and torchvision's
// create_feature_extractor on the same weights where torch is installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../src/core/tensor.js';
import * as F from '../src/ops/functional.js';
import { getModel, type ImageNetModelName as ModelName } from '../src/models/builders.js';
import type { BasicBlock, ResNet } from '../src/models/resnet.js';
import { extractFeatures, featureInfo } from '../src/models/features.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { writeTorchStateDict } from '../src/io/torch-writer.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { assertCloseToReference, maxAbsDiff } from './helpers/compare.js';
import { runTorchPython, torchUnavailable } from './helpers/torch-python.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

function filledEvalModel(name: ModelName): ResNet {
  return filledModel(() => getModel(name)).eval();
}

const ALL = ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc'];

/** The unfused, module-by-module path, every top-level output kept. */
function moduleByModule(model: ResNet, x: Tensor): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  let y = x;
  for (const name of ALL) {
    const module = [...model.namedChildren()].find(([n]) => n === name)![1];
    if (name === 'fc') y = F.flatten(y, 1);
    y = module.call(y);
    out.set(name, y);
  }
  return out;
}

function noHooksLeft(model: ResNet): boolean {
  return [...model.modules()].every((m) => !m.hasForwardHooks());
}

test('every top-level output in one pass equals the module-by-module run; fc equals the planned forward', () => {
  for (const name of ['resnet18', 'resnext50_32x4d'] as const) {
    const model = filledEvalModel(name);
    const x = deterministicInput([2, 3, 64, 64]);
    const features = extractFeatures(model, x, ALL);
    assert.deepEqual([...features.keys()], ALL);
    assert.ok(noHooksLeft(model), 'hooks removed');
    const unfused = (() => {
      // Nothing fused: every module hooked, each call a plan of its own without folding.
      const removers = [...model.modules()].map((m) => m.registerForwardHook(() => undefined));
      try {
        return moduleByModule(model, x);
      } finally {
        for (const remove of removers) remove();
      }
    })();
    for (const key of ALL) assertCloseToReference(features.get(key)!, unfused.get(key)!, 1e-5, `${name} ${key}`);
    assertCloseToReference(features.get('fc')!, model.forward(x), 1e-5, `${name} fc vs forward`);
    assert.deepEqual(features.get('avgpool')!.shape, [2, model.fc.inFeatures, 1, 1]);
  }
});

test('deeper modules by their state-dict path; a repeated module gives its last call', () => {
  const model = filledEvalModel('resnet18');
  const x = deterministicInput([1, 3, 64, 64]);
  const f = extractFeatures(model, x, ['layer2.0.downsample', 'layer3.1', 'layer2.0', 'layer1.1.relu', 'layer1']);
  assert.deepEqual([...f.keys()], ['layer2.0.downsample', 'layer3.1', 'layer2.0', 'layer1.1.relu', 'layer1']);
  const layer1 = f.get('layer1')!;
  assert.equal(maxAbsDiff(f.get('layer1.1.relu')!, layer1), 0, "a block's last ReLU is the block's output");
  const block = model.layer2.at(0) as BasicBlock;
  assertCloseToReference(f.get('layer2.0.downsample')!, block.downsample!.call(layer1), 1e-5, 'downsample');
  assertCloseToReference(f.get('layer3.1')!, model.layer3.call(model.layer2.call(layer1)), 1e-5, 'layer3.1 is the output of layer3');
});

test('the pass stops after the last stage asked for', () => {
  const model = filledEvalModel('resnet50');
  let later = 0;
  const removers = [model.layer3, model.layer4, model.fc].map((m) => m.registerForwardHook(() => void later++));
  const f = extractFeatures(model, deterministicInput([1, 3, 64, 64]), ['layer1', 'layer2.1.conv2']);
  for (const remove of removers) remove();
  assert.equal(later, 0, 'layer3, layer4 and fc never ran');
  assert.deepEqual(f.get('layer1')!.shape, [1, 256, 16, 16]);
  assert.deepEqual(f.get('layer2.1.conv2')!.shape, [1, 128, 8, 8]);
  assert.ok(noHooksLeft(model));
});

test('unknown names are refused before anything runs, and nothing is left hooked', () => {
  const model = getModel('resnet18', { seed: 0 }).eval();
  assert.throws(() => extractFeatures(model, deterministicInput([1, 3, 32, 32]), ['layer1', 'layer5']), /no module 'layer5'.*layer1, layer2/);
  assert.throws(() => extractFeatures(model, deterministicInput([1, 3, 32, 32]), ['']), /no module ''/);
  assert.ok(noHooksLeft(model));
});

test("featureInfo: timm's channels and reductions, equal to the traced feature maps", () => {
  const cases: [ModelName, { replaceStrideWithDilation?: [boolean, boolean, boolean] }, number[], number[]][] = [
    ['resnet18', {}, [64, 64, 128, 256, 512], [2, 4, 8, 16, 32]],
    ['resnet50', {}, [64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]],
    ['wide_resnet50_2', { replaceStrideWithDilation: [false, true, true] }, [64, 256, 512, 1024, 2048], [2, 4, 8, 8, 8]],
  ];
  for (const [name, options, channels, reductions] of cases) {
    const model = getModel(name, { ...options, seed: 0 }).eval();
    const info = featureInfo(model);
    assert.deepEqual(info.map((i) => i.module), ['relu', 'layer1', 'layer2', 'layer3', 'layer4']);
    assert.deepEqual(info.map((i) => i.channels), channels, name);
    assert.deepEqual(info.map((i) => i.reduction), reductions, name);
    const maps = extractFeatures(model, deterministicInput([1, 3, 64, 64]), info.map((i) => i.module));
    for (const { module, channels: c, reduction } of info) assert.deepEqual(maps.get(module)!.shape, [1, c, 64 / reduction, 64 / reduction], `${name} ${module}`);
  }
});

test("torchvision's create_feature_extractor gives the same maps", { skip: torchUnavailable() }, () => {
  const work = mkdtempSync(join(tmpdir(), 'resnet-features-'));
  const model = filledEvalModel('resnet18');
  const x = deterministicInput([2, 3, 64, 64]);
  const nodes = ['relu', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc'];
  writeFileSync(join(work, 'w.pth'), writeTorchStateDict(model.stateDict()));
  writeFileSync(join(work, 'x.npy'), writeNpy(x));
  runTorchPython(`
import sys, numpy as np, torch, torchvision
from torchvision.models.feature_extraction import create_feature_extractor
work, nodes = sys.argv[1], sys.argv[2].split(',')
model = torchvision.models.resnet18()
model.load_state_dict(torch.load(work + '/w.pth'), strict=True)
extractor = create_feature_extractor(model.eval(), return_nodes=nodes)
with torch.no_grad():
    out = extractor(torch.from_numpy(np.load(work + '/x.npy')))
for name in nodes:
    np.save(f'{work}/{name}.npy', out[name].numpy())
`, [work, nodes.join(',')]);
  const ours = extractFeatures(model, x, nodes);
  for (const name of nodes) assertCloseToReference(ours.get(name)!, readNpy(readFileSync(join(work, `${name}.npy`))), 1e-4, name);
});
