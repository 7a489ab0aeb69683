// The network's construction rules, initialisation, state-dict handling and summary totals,
// checked against torchvision's behaviour and its published figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BasicBlock,
  BatchNorm2d,
  Bottleneck,
  Conv2d,
  Linear,
  ReLU,
  ResNet,
  Sequential,
  StateDictError,
  Tensor,
  getModel,
  listModels,
  manualSeed,
} from '../src/index.js';
import { summarize } from '../src/tools/summary.js';
import { uninitialised } from './helpers/fill.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

test('listModels names the ten torchvision builders in order, then the five CIFAR ResNets', () => {
  const torchvision = [
    'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
    'resnext50_32x4d', 'resnext101_32x8d', 'resnext101_64x4d', 'wide_resnet50_2', 'wide_resnet101_2',
  ];
  const cifar = ['resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110'];
  assert.deepEqual(listModels('imagenet'), torchvision);
  assert.deepEqual(listModels('cifar'), cifar);
  assert.deepEqual(listModels(), [...torchvision, ...cifar]);
  assert.throws(() => getModel('resnet19'), /unknown model 'resnet19'/);
});

test("torchvision's errors for impossible combinations", () => {
  assert.throws(() => new ResNet(BasicBlock, [2, 2, 2, 2], { groups: 2 }), /BasicBlock only supports groups=1 and base_width=64/);
  assert.throws(() => getModel('resnet18', { widthPerGroup: 32 }), /BasicBlock only supports groups=1 and base_width=64/);
  assert.throws(() => getModel('resnet34', { replaceStrideWithDilation: [false, true, true] }), /Dilation > 1 not supported in BasicBlock/);
  assert.throws(() => getModel('resnet50', { replaceStrideWithDilation: [false, true] }), /should be None or a 3-element tuple/);
  assert.throws(() => getModel('resnext50_32x4d', { groups: 8 }), /The parameter 'groups' expected value 32 but got 8 instead/);
  assert.throws(() => getModel('wide_resnet50_2', { widthPerGroup: 64 }), /'widthPerGroup' expected value 128 but got 64/);
  // Restating a builder's own value is allowed, as in torchvision.
  assert.equal(getModel('resnext50_32x4d', { groups: 32, numClasses: 3 }).fc.outFeatures, 3);
});

test('replaceStrideWithDilation keeps layer3/4 at stride 8 with dilated 3×3 convolutions', () => {
  const model = getModel('resnet50', { replaceStrideWithDilation: [false, true, true] });
  const block = model.layer4.at(1) as Bottleneck;
  assert.deepEqual(block.conv2.dilation, [4, 4]);
  assert.deepEqual(block.conv2.padding, [4, 4]);
  assert.deepEqual((model.layer4.at(0) as Bottleneck).conv2.stride, [1, 1]);
  const s = summarize(model, [1, 3, 224, 224]);
  assert.deepEqual(s.layers.find((l) => l.name === 'layer4')!.outputShape, [1, 2048, 28, 28]);
});

test('downsample exists exactly where the stride or channel count changes', () => {
  const r18 = getModel('resnet18');
  assert.equal((r18.layer1.at(0) as BasicBlock).downsample, null);
  assert.ok((r18.layer2.at(0) as BasicBlock).downsample instanceof Sequential);
  assert.equal((r18.layer2.at(1) as BasicBlock).downsample, null);
  const r50 = getModel('resnet50');
  const down = (r50.layer1.at(0) as Bottleneck).downsample as Sequential;
  assert.ok(down.at(0) instanceof Conv2d && down.at(1) instanceof BatchNorm2d);
  assert.deepEqual((down.at(0) as Conv2d).kernelSize, [1, 1]);
  // V1.5: the stride sits on the 3×3 convolution, not the first 1×1.
  const first = r50.layer2.at(0) as Bottleneck;
  assert.deepEqual(first.conv1.stride, [1, 1]);
  assert.deepEqual(first.conv2.stride, [2, 2]);
});

test("torchvision's initialisation: kaiming-normal fan_out for convs, BN 1/0, default Linear; seedable", () => {
  const model = getModel('resnet50', { seed: 7 });
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Conv2d && m.weight.size >= 16384) {
      const [o, , kh, kw] = m.weight.shape;
      const expectedStd = Math.sqrt(2 / (o * kh * kw));
      const data = m.weight.f32;
      let sum = 0;
      let squares = 0;
      for (const v of data) {
        sum += v;
        squares += v * v;
      }
      const mean = sum / data.length;
      const std = Math.sqrt(squares / data.length - mean * mean);
      assert.ok(Math.abs(std / expectedStd - 1) < 0.03, `${name}: std ${std} vs ${expectedStd}`);
      assert.ok(Math.abs(mean) < 0.03 * expectedStd, `${name}: mean ${mean}`);
    }
    if (m instanceof BatchNorm2d) {
      assert.ok(m.weight!.f32.every((v) => v === 1) && m.bias!.f32.every((v) => v === 0), `${name} BN init`);
    }
  }
  const bound = 1 / Math.sqrt(2048);
  assert.ok(model.fc.weight.f32.every((v) => Math.abs(v) <= bound));
  assert.ok(model.fc.bias!.f32.every((v) => Math.abs(v) <= bound));
  assert.ok(model.fc.weight.f32.some((v) => Math.abs(v) > bound * 0.99));

  const again = getModel('resnet50', { seed: 7 });
  assert.deepEqual(again.conv1.weight.f32, model.conv1.weight.f32);
  assert.notDeepEqual(getModel('resnet50', { seed: 8 }).conv1.weight.f32, model.conv1.weight.f32);
  manualSeed(3);
  const a = getModel('resnet18');
  manualSeed(3);
  assert.deepEqual(getModel('resnet18').fc.weight.f32, a.fc.weight.f32);
});

test('zeroInitResidual zeroes the last BN weight of every block and nothing else', () => {
  for (const name of ['resnet18', 'resnet50']) {
    const model = getModel(name, { zeroInitResidual: true, seed: 1 });
    for (const [key, t] of model.stateDict()) {
      const last = /\.(bn2|bn3)\.weight$/.test(key) && (name === 'resnet18' ? key.endsWith('bn2.weight') : key.endsWith('bn3.weight'));
      if (key.endsWith('running_mean') || key.endsWith('.bias') || key.endsWith('num_batches_tracked')) continue;
      assert.equal(t.f32.every((v) => v === 0), last, key);
    }
  }
});

function smallNet(): Sequential {
  return new Sequential(new Conv2d(3, 4, 3, { bias: false }), new BatchNorm2d(4), new ReLU(), new Linear(2, 3));
}

test("state dict keys and order follow torch: own params, buffers, then children '0', '1', …", () => {
  assert.deepEqual([...smallNet().stateDict().keys()], [
    '0.weight', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '3.weight', '3.bias',
  ]);
  assert.equal(smallNet().stateDict().get('1.num_batches_tracked')!.dtype, 'int64');
});

test('a mismatched load names the missing, unexpected and mis-shaped keys and changes nothing', () => {
  const target = getModel('resnet18', { seed: 1 });
  const before = target.conv1.weight.f32.slice();
  const source = new Map(getModel('resnet18', { numClasses: 10, seed: 2 }).stateDict());
  source.delete('layer1.0.bn1.running_var');
  source.set('fc2.weight', Tensor.zeros([1]));
  let error: unknown;
  try {
    target.loadStateDict(source);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof StateDictError);
  assert.match(error.message, /^Error\(s\) in loading state_dict for ResNet:/);
  assert.match(error.message, /Missing key\(s\) in state_dict: "layer1\.0\.bn1\.running_var"\./);
  assert.match(error.message, /Unexpected key\(s\) in state_dict: "fc2\.weight"\./);
  assert.match(error.message, /size mismatch for fc\.weight: copying a param with shape \[10, 512\] from checkpoint, the shape in current model is \[1000, 512\]\./);
  assert.match(error.message, /size mismatch for fc\.bias/);
  assert.deepEqual(target.conv1.weight.f32, before, 'a failed strict load must not modify the model');

  const result = target.loadStateDict(source, { strict: false });
  assert.deepEqual(result.missingKeys, ['layer1.0.bn1.running_var']);
  assert.deepEqual(result.unexpectedKeys, ['fc2.weight']);
  assert.deepEqual(result.mismatchedKeys.map((m) => m.key), ['fc.weight', 'fc.bias']);
  assert.deepEqual(target.conv1.weight.f32, source.get('conv1.weight')!.f32, 'non-strict load copies what fits');
});

test("a DataParallel checkpoint ('module.' before every key) fails as in torch, and the error says why", () => {
  const target = getModel('resnet18', { seed: 1 });
  const source = new Map([...getModel('resnet18', { seed: 2 }).stateDict()].map(([k, v]) => [`module.${k}`, v]));
  assert.throws(() => target.loadStateDict(source), (e: unknown) => e instanceof StateDictError &&
    /Unexpected key\(s\) in state_dict: "module\.conv1\.weight"/.test(e.message) &&
    /every unexpected key is a model key behind 'module\.' \(a DataParallel or DistributedDataParallel checkpoint\)/.test(e.message));
  // Other mismatches get no such hint.
  const other = new Map(getModel('resnet18', { seed: 2 }).stateDict());
  other.set('module.extra', Tensor.zeros([1]));
  assert.throws(() => target.loadStateDict(other), (e: unknown) => e instanceof StateDictError && !/DataParallel/.test(e.message));
});

test("torch.compile's '_orig_mod.' and a wrapper's attribute (a Lightning module's 'model.') get the same hint, with their prefix", () => {
  const target = getModel('resnet18', { seed: 1 });
  const keys = [...getModel('resnet18', { seed: 2 }).stateDict()];
  const behind = (prefix: string) => new Map(keys.map(([k, v]) => [`${prefix}${k}`, v]));
  assert.throws(() => target.loadStateDict(behind('_orig_mod.')), (e: unknown) => e instanceof StateDictError &&
    /behind '_orig_mod\.' \(the state dict of a torch\.compile model\).*consume_prefix_in_state_dict_if_present\(state_dict, '_orig_mod\.'\)/.test(e.message));
  assert.throws(() => target.loadStateDict(behind('model.')), (e: unknown) => e instanceof StateDictError &&
    /behind 'model\.' \(a checkpoint of a model held by a wrapper\)/.test(e.message));
  // Two prefixes deep (a DataParallel of a wrapper): the whole prefix is named.
  assert.throws(() => target.loadStateDict(behind('module.net.')), (e: unknown) => e instanceof StateDictError &&
    /behind 'module\.net\.'/.test(e.message));
});

test('a state dict without num_batches_tracked still loads, as in torch', () => {
  const source = new Map([...smallNet().stateDict()].filter(([k]) => !k.endsWith('num_batches_tracked')));
  const result = smallNet().loadStateDict(source);
  assert.deepEqual(result.missingKeys, []);
});

test('BatchNorm2d: eval uses running statistics; train uses batch statistics and updates them', () => {
  const bn = new BatchNorm2d(2);
  const x = Tensor.from([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]);
  bn.eval();
  const evalOut = bn.call(x).f32;
  x.f32.forEach((v, i) => assert.ok(Math.abs(evalOut[i] - v / Math.sqrt(1 + 1e-5)) < 1e-5));
  assert.equal(bn.numBatchesTracked!.item(), 0);
  bn.train();
  const y = bn.call(x).f32;
  assert.ok(Math.abs(y[0] + y[1] + y[2] + y[3]) < 1e-5, 'train output is normalised by the batch');
  // running_mean = 0.9*0 + 0.1*2.5; running_var = 0.9*1 + 0.1*unbiased var(1,2,3,4)=5/3
  assert.ok(Math.abs(bn.runningMean!.f32[0] - 0.25) < 1e-6);
  assert.ok(Math.abs(bn.runningVar!.f32[0] - (0.9 + 0.1 * (5 / 3))) < 1e-6);
  assert.equal(bn.numBatchesTracked!.item(), 1);
});

test('the model rejects inputs it cannot take with a clear message', () => {
  const model = getModel('resnet18', { seed: 1 }).eval();
  // torch's words, from the first convolution (as torchvision's model has no check of its own).
  assert.throws(() => model.call(Tensor.zeros([1, 4, 32, 32])), { name: 'ShapeError', message: /expected input \[1, 4, 32, 32\] to have 3 channels, but got 4/ });
  assert.throws(() => model.call(Tensor.zeros([3, 32, 32])), { name: 'ShapeError', message: /expected a 4-D \(N, C, H, W\) input, got shape \[3, 32, 32\]/ });
});

// torchvision's published figures (the weights tables of torchvision.models): parameters,
// and GFLOPS = convolution + linear multiply-accumulates at 3×224×224, to two decimals.
const PUBLISHED: Record<string, [number, number]> = {
  resnet18: [11689512, 1.81],
  resnet34: [21797672, 3.66],
  resnet50: [25557032, 4.09],
  resnet101: [44549160, 7.8],
  resnet152: [60192808, 11.51],
  resnext50_32x4d: [25028904, 4.23],
  resnext101_32x8d: [88791336, 16.41],
  resnext101_64x4d: [83455272, 15.46],
  wide_resnet50_2: [68883240, 11.4],
  wide_resnet101_2: [126886696, 22.75],
};

test("summary totals equal torchvision's published parameters and GFLOPS", () => {
  for (const name of listModels('imagenet')) {
    const s = summarize(uninitialised(() => getModel(name)), [1, 3, 224, 224]); // shapes only
    const [params, gmacs] = PUBLISHED[name];
    assert.equal(s.totalParams, params, `${name} params`);
    assert.equal(Number((s.totalMacs / 1e9).toFixed(2)), gmacs, `${name} GMACs ${s.totalMacs}`);
    assert.deepEqual(s.outputShape, [1, 1000]);
  }
});

test('eval mode folds BN into the convolutions: same output as the unfused module-by-module path', () => {
  const model = getModel('resnext50_32x4d', { seed: 5, numClasses: 10 });
  // Non-trivial BN statistics, so that folding has something to fold.
  for (const [key, t] of model.stateDict()) {
    if (key.endsWith('running_var')) t.f32.forEach((_, i, a) => (a[i] = 0.5 + ((i * 7919) % 13) / 13));
    if (key.endsWith('running_mean')) t.f32.forEach((_, i, a) => (a[i] = (((i * 104729) % 11) - 5) / 50));
  }
  model.eval();
  const x = Tensor.zeros([2, 3, 40, 36]);
  x.f32.forEach((_, i, a) => (a[i] = Math.sin(i * 0.37)));
  const fused = model.call(x);
  // A forward hook on every module makes each one run by itself (as summaries need).
  const removers = [...model.modules()].map((m) => m.registerForwardHook(() => {}));
  const unfused = model.call(x);
  removers.forEach((remove) => remove());
  const scale = Math.max(...unfused.f32.map(Math.abs));
  const worst = Math.max(...fused.f32.map((v, i) => Math.abs(v - unfused.f32[i])));
  assert.ok(worst <= 1e-5 * scale, `fused vs unfused: ${worst} (scale ${scale})`);
  // Folds follow loadStateDict: new weights are seen by the next forward.
  const zeros = new Map([...model.stateDict()].map(([k, t]) => [k, k.endsWith('running_var') ? Tensor.full(t.shape, 1) : Tensor.zeros(t.shape, t.dtype)]));
  model.loadStateDict(zeros);
  assert.ok(model.call(x).f32.every((v) => v === 0));
});

test('loadStateDict with assign: the module takes the given tensors\' memory; a failed strict load still changes nothing', () => {
  const source = getModel('resnet18', { seed: 1 }).stateDict();
  const model = getModel('resnet18', { seed: 2 });
  const weightBefore = model.conv1.weight;
  model.loadStateDict(source, { assign: true });
  assert.equal(model.conv1.weight, weightBefore, 'the same tensor object, so every holder sees the load');
  assert.equal(model.conv1.weight.data, source.get('conv1.weight')!.data, 'sharing the source data, not a copy');
  assert.equal((model.bn1 as BatchNorm2d).numBatchesTracked!.data, source.get('bn1.num_batches_tracked')!.data);
  source.get('fc.bias')!.f32[0] = 123;
  assert.equal(model.fc.bias!.f32[0], 123);

  const other = getModel('resnet18', { seed: 3 });
  const kept = other.conv1.weight.data;
  const broken = new Map(source);
  broken.delete('fc.bias');
  assert.throws(() => other.loadStateDict(broken, { assign: true }), StateDictError);
  assert.equal(other.conv1.weight.data, kept);

  // A float32 value for an int64 buffer is converted and copied, as without assign.
  const converted = new Map(source);
  converted.set('bn1.num_batches_tracked', Tensor.from([7]).reshape([]));
  other.loadStateDict(converted, { assign: true });
  assert.equal((other.bn1 as BatchNorm2d).numBatchesTracked!.dtype, 'int64');
  assert.equal((other.bn1 as BatchNorm2d).numBatchesTracked!.item(), 7);
  assert.throws(() => Tensor.from([1, 2]).set_(Tensor.from([1, 2, 3])), /set_: float32 tensor of shape \[3\]/);
});
