// The reference backend: plain TypeScript kernels, readable in one sitting. They are the
// oracle that every fast backend is tested against, so clarity wins over speed here; the
// one concession is that convolution is im2col + a row-major GEMM, so a ResNet-50 forward
// takes seconds rather than minutes.

import { Tensor } from '../../core/tensor.js';
import { foldWeightScale, type Backend, type ChannelMoments, type Conv2dParams, type ConvEpilogue, type Pool2dParams } from '../backend.js';
import { gemmAccumulate, im2col } from './gemm.js';
import { referenceBackwardKernels } from './backward.js';

function conv2d(
  x: Tensor, weight: Tensor, bias: Tensor | null, p: Conv2dParams, outH: number, outW: number, epilogue: ConvEpilogue = {},
): Tensor {
  const [batch, inChannels, height, width] = x.shape;
  const [outChannels, groupInChannels, kh, kw] = weight.shape;
  const groupOutChannels = outChannels / p.groups;
  const outPlane = outH * outW;
  const out = new Float32Array(batch * outChannels * outPlane);
  const xData = x.f32;
  const wData = foldWeightScale(weight.f32, epilogue.scale);
  const patch = groupInChannels * kh * kw;
  // A 1×1, stride-1, unpadded convolution is already a GEMM over the input planes.
  const pointwise = kh === 1 && kw === 1 && p.stride[0] === 1 && p.stride[1] === 1 && p.padding[0] === 0 && p.padding[1] === 0;
  const cols = pointwise ? xData : new Float32Array(patch * outPlane);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < p.groups; g++) {
      const xOffset = (n * inChannels + g * groupInChannels) * height * width;
      if (!pointwise) im2col(xData, xOffset, groupInChannels, height, width, kh, kw, p, outH, outW, cols);
      const outOffset = (n * outChannels + g * groupOutChannels) * outPlane;
      gemmAccumulate(
        groupOutChannels, outPlane, patch,
        wData, g * groupOutChannels * patch,
        cols, pointwise ? xOffset : 0,
        out, outOffset,
      );
    }
  }
  applyEpilogue(out, outChannels, outPlane, bias, epilogue);
  return new Tensor(out, [batch, outChannels, outH, outW]);
}

/** out (N, O, plane) = relu?(out + bias[o] + residual), in place. */
function applyEpilogue(out: Float32Array, channels: number, plane: number, bias: Tensor | null, epilogue: ConvEpilogue): void {
  const b = bias?.f32;
  const residual = epilogue.residual?.f32;
  const relu = epilogue.relu ?? false;
  if (!b && !residual && !relu) return;
  for (let i = 0; i < out.length; i++) {
    let v = out[i];
    if (b) v += b[Math.floor(i / plane) % channels];
    if (residual) v += residual[i];
    out[i] = relu && v < 0 ? 0 : v;
  }
}

function channelAffine(x: Tensor, scale: Float32Array, shift: Float32Array): Tensor {
  const [batch, channels] = x.shape;
  const plane = x.size / (batch * channels);
  const src = x.f32;
  const out = new Float32Array(x.size);
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const start = (n * channels + c) * plane;
      const a = scale[c];
      const b = shift[c];
      for (let j = start; j < start + plane; j++) out[j] = src[j] * a + b;
    }
  }
  return new Tensor(out, x.shape);
}

function channelMoments(x: Tensor): ChannelMoments {
  const [batch, channels] = x.shape;
  const plane = x.size / (batch * channels);
  const src = x.f32;
  const count = batch * plane;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  // Two passes in float64: the mean first, then squared deviations (no cancellation).
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < batch; n++) {
      const start = (n * channels + c) * plane;
      for (let j = start; j < start + plane; j++) sum += src[j];
    }
    mean[c] = sum / count;
    let squares = 0;
    for (let n = 0; n < batch; n++) {
      const start = (n * channels + c) * plane;
      for (let j = start; j < start + plane; j++) {
        const d = src[j] - mean[c];
        squares += d * d;
      }
    }
    variance[c] = squares / count;
  }
  return { mean, variance };
}

function relu(x: Tensor): Tensor {
  const src = x.f32;
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = src[i] > 0 ? src[i] : 0;
  return new Tensor(out, x.shape);
}

function add(a: Tensor, b: Tensor): Tensor {
  const left = a.f32;
  const right = b.f32;
  const out = new Float32Array(a.size);
  for (let i = 0; i < out.length; i++) out[i] = left[i] + right[i];
  return new Tensor(out, a.shape);
}

function maxPool2d(x: Tensor, p: Pool2dParams, outH: number, outW: number): Tensor {
  const [batch, channels, height, width] = x.shape;
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  const src = x.f32;
  const out = new Float32Array(batch * channels * outH * outW);
  let o = 0;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++, o++) {
        let best = -Infinity;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pw + kx * dw;
            if (ix < 0 || ix >= width) continue;
            const v = src[base + iy * width + ix];
            // NaN propagates, as in torch.
            if (v > best || Number.isNaN(v)) best = v;
          }
        }
        out[o] = best;
      }
    }
  }
  return new Tensor(out, [batch, channels, outH, outW]);
}

function adaptiveAvgPool2d(x: Tensor, outH: number, outW: number): Tensor {
  const [batch, channels, height, width] = x.shape;
  const src = x.f32;
  const out = new Float32Array(batch * channels * outH * outW);
  let o = 0;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = Math.floor((oy * height) / outH);
      const y1 = Math.ceil(((oy + 1) * height) / outH);
      for (let ox = 0; ox < outW; ox++, o++) {
        const x0 = Math.floor((ox * width) / outW);
        const x1 = Math.ceil(((ox + 1) * width) / outW);
        let sum = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) sum += src[base + iy * width + ix];
        }
        out[o] = sum / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return new Tensor(out, [batch, channels, outH, outW]);
}

function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [batch, inFeatures] = x.shape;
  const outFeatures = weight.shape[0];
  const src = x.f32;
  const w = weight.f32;
  const b = bias?.f32;
  const out = new Float32Array(batch * outFeatures);
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = 0;
      const row = o * inFeatures;
      const xRow = n * inFeatures;
      for (let i = 0; i < inFeatures; i++) sum += src[xRow + i] * w[row + i];
      out[n * outFeatures + o] = sum + (b ? b[o] : 0);
    }
  }
  return new Tensor(out, [batch, outFeatures]);
}

export function createReferenceBackend(): Backend {
  // The oracle runs on the calling thread alone.
  const setThreads = (): void => {};
  const getThreads = (): number => 1;
  return {
    name: 'ref', setThreads, getThreads, conv2d, channelAffine, channelMoments, relu, add, maxPool2d, adaptiveAvgPool2d, linear,
    ...referenceBackwardKernels,
  };
}
