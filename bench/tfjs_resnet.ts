// Our ResNet as a TensorFlow.js graph, for the tfjs-backend-wasm peer: the same weights, read
// from our model after loading, with BatchNorm folded into each convolution (foldedConvWeights, as
// our eval mode and TF's graph optimiser both do) and laid out for tfjs: activations NHWC,
// convolution filters HWIO, fc weight (in, out). The benchmark checks its
// logits against ours before timing it.

import type * as tfjs from '@tensorflow/tfjs-core';
import type { Tensor } from '../src/core/tensor.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm2d, Conv2d, Sequential } from '../src/nn/layers.js';
import { foldedConvWeights } from '../src/nn/fuse.js';
import { BasicBlock, Bottleneck, type ResNet } from '../src/models/resnet.js';

type TF = typeof tfjs;

interface TfConv {
  filter: tfjs.Tensor4D; // (kh, kw, in, out)
  bias: tfjs.Tensor1D;
  stride: number;
  pad: number;
  dilation: number;
}

interface TfBlock {
  convs: TfConv[]; // conv1, conv2[, conv3]; ReLU after each but the last
  downsample: TfConv | null;
}

/** (O, I, kh, kw) → (kh, kw, I, O). */
function oihwToHwio(weight: Tensor): Float32Array {
  const [o, i, kh, kw] = weight.shape;
  const src = weight.f32;
  const dst = new Float32Array(src.length);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < i; b++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) dst[((y * kw + x) * i + b) * o + a] = src[((a * i + b) * kh + y) * kw + x];
      }
    }
  }
  return dst;
}

function foldedConv(tf: TF, conv: Conv2d, norm: Module): TfConv {
  if (!(norm instanceof BatchNorm2d)) throw new Error('tfjs graph: expected BatchNorm2d after each convolution');
  if (conv.groups !== 1) throw new Error('tfjs graph: grouped convolutions are not supported (tf.conv2d has no groups)');
  if (conv.stride[0] !== conv.stride[1] || conv.padding[0] !== conv.padding[1] || conv.dilation[0] !== conv.dilation[1]) {
    throw new Error('tfjs graph: only square strides, paddings and dilations');
  }
  const { weight, bias } = foldedConvWeights(conv, norm);
  const [o, i, kh, kw] = weight.shape;
  return {
    filter: tf.tensor4d(oihwToHwio(weight), [kh, kw, i, o]),
    bias: tf.tensor1d(bias.f32),
    stride: conv.stride[0],
    pad: conv.padding[0],
    dilation: conv.dilation[0],
  };
}

function applyConv(tf: TF, x: tfjs.Tensor4D, c: TfConv, relu: boolean): tfjs.Tensor4D {
  return tf.fused.conv2d({
    x,
    filter: c.filter,
    strides: c.stride,
    pad: c.pad, // a number pads both sides, as torch does (not TF's 'same')
    dilations: c.dilation,
    bias: c.bias,
    activation: relu ? 'relu' : 'linear',
  });
}

export interface TfResNet {
  /** x (N, H, W, 3) → logits (N, classes). */
  predict(x: tfjs.Tensor4D): tfjs.Tensor2D;
  dispose(): void;
}

/** The tfjs graph of an eval-mode ResNet with plain (ungrouped) convolutions and BatchNorm. */
export function buildTfResNet(tf: TF, model: ResNet): TfResNet {
  if (model.training) throw new Error('tfjs graph: call model.eval() first (BatchNorm is folded)');
  const maxpool = model.maxpool;
  const stem = foldedConv(tf, model.conv1, model.bn1);
  const blocks: TfBlock[] = [];
  for (const layer of [model.layer1, model.layer2, model.layer3, model.layer4]) {
    for (const block of layer.layers) {
      let pairs: [Conv2d, Module][];
      if (block instanceof Bottleneck) {
        pairs = [[block.conv1, block.bn1], [block.conv2, block.bn2], [block.conv3, block.bn3]];
      } else if (block instanceof BasicBlock) {
        pairs = [[block.conv1, block.bn1], [block.conv2, block.bn2]];
      } else {
        throw new Error(`tfjs graph: unexpected block ${block.typeName}`);
      }
      let downsample: TfConv | null = null;
      if (block.downsample) {
        const [conv, norm] = block.downsample instanceof Sequential ? block.downsample.layers : [];
        if (!(conv instanceof Conv2d)) throw new Error('tfjs graph: expected downsample = Sequential(Conv2d, BatchNorm2d)');
        downsample = foldedConv(tf, conv, norm);
      }
      blocks.push({ convs: pairs.map(([c, n]) => foldedConv(tf, c, n)), downsample });
    }
  }
  // (out, in) stored as (in, out): tfjs-backend-wasm 4.22's fused matMul with transposeB and a
  // bias gives wrong results (its cpu backend does not), so the graph never asks for transposeB.
  const [outFeatures, inFeatures] = model.fc.weight.shape;
  const fcWeight = tf.tidy(() => tf.transpose(tf.tensor2d(model.fc.weight.f32, [outFeatures, inFeatures])));
  const fcBias = model.fc.bias ? tf.tensor1d(model.fc.bias.f32) : undefined;

  const weights: tfjs.Tensor[] = [fcWeight, ...(fcBias ? [fcBias] : [])];
  for (const c of [stem, ...blocks.flatMap((b) => [...b.convs, ...(b.downsample ? [b.downsample] : [])])]) weights.push(c.filter, c.bias);

  return {
    predict: (input) =>
      tf.tidy(() => {
        let x = applyConv(tf, input, stem, true);
        x = tf.maxPool(x, maxpool.kernelSize, maxpool.stride, maxpool.padding[0]);
        for (const block of blocks) {
          const identity = block.downsample ? applyConv(tf, x, block.downsample, false) : x;
          let out = x;
          block.convs.forEach((c, i) => {
            out = applyConv(tf, out, c, i < block.convs.length - 1);
          });
          x = tf.relu(tf.add(out, identity)) as tfjs.Tensor4D;
        }
        const pooled = tf.mean(x, [1, 2]) as tfjs.Tensor2D; // adaptive average pool to 1×1, flattened
        return tf.fused.matMul({ a: pooled, b: fcWeight, bias: fcBias }) as tfjs.Tensor2D;
      }),
    dispose: () => weights.forEach((w) => w.dispose()),
  };
}
