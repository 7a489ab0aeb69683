// The reference backward kernels: the gradient of each forward kernel of ./kernels.ts, in plain
// TypeScript. They are the oracle for the native and wasm backward kernels and the fallback of
// any backend that lacks one. Each takes its forward's saved values and the gradient of its
// output (dy) and returns a new gradient; none accumulates into an existing one (autograd sums).
// Sums over a batch run in float64 (JavaScript's numbers) and are rounded to float32 once.

import { Tensor } from '../../core/tensor.js';
import type { Backend, BatchNormGradients, Conv2dParams, Pool2dParams } from '../backend.js';
import { gemmAccumulate, im2col } from './gemm.js';

/** src (rows, cols) row-major → (cols, rows), starting at src[offset]. */
function transpose(src: Float32Array, offset: number, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[offset + r * cols + c];
  }
  return out;
}

/** A 1×1, stride-1, unpadded convolution, whose im2col is the input itself. */
function isPointwise(kh: number, kw: number, p: Conv2dParams): boolean {
  return kh === 1 && kw === 1 && p.stride[0] === 1 && p.stride[1] === 1 && p.padding[0] === 0 && p.padding[1] === 0;
}

/**
 * The adjoint of im2col: adds each column entry back to the input pixel it was read from.
 * cols is (channels * kh * kw, outH * outW) as im2col lays it out; dx is (channels, height,
 * width) starting at dxOffset. Pixels read by several windows receive the sum.
 */
function col2imAccumulate(
  cols: Float32Array, dx: Float32Array, dxOffset: number, channels: number, height: number, width: number,
  kh: number, kw: number, p: Conv2dParams, outH: number, outW: number,
): void {
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    const plane = dxOffset + c * height * width;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, row++) {
        const colRow = row * outH * outW;
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= height) continue;
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * sw - pw + kx * dw;
            if (ix >= 0 && ix < width) dx[plane + iy * width + ix] += cols[colRow + oy * outW + ox];
          }
        }
      }
    }
  }
}

/**
 * dx = conv2d's input gradient. Per image and group, with W_g the group's weight as a
 * (groupOut, patch) matrix: cols (patch, outPlane) = W_gᵀ · dy_g, then col2im scatters cols
 * back onto the input (a pointwise convolution writes W_gᵀ · dy_g straight into dx).
 */
function conv2dBackwardInput(dy: Tensor, weight: Tensor, p: Conv2dParams, inH: number, inW: number): Tensor {
  const [batch, outChannels, outH, outW] = dy.shape;
  const [, groupInChannels, kh, kw] = weight.shape;
  const inChannels = groupInChannels * p.groups;
  const groupOutChannels = outChannels / p.groups;
  const patch = groupInChannels * kh * kw;
  const outPlane = outH * outW;
  const dyData = dy.f32;
  const dx = new Float32Array(batch * inChannels * inH * inW);
  const pointwise = isPointwise(kh, kw, p);
  const cols = pointwise ? dx : new Float32Array(patch * outPlane);
  for (let g = 0; g < p.groups; g++) {
    const weightT = transpose(weight.f32, g * groupOutChannels * patch, groupOutChannels, patch); // (patch, groupOut)
    for (let n = 0; n < batch; n++) {
      const dxOffset = (n * inChannels + g * groupInChannels) * inH * inW;
      const dyOffset = (n * outChannels + g * groupOutChannels) * outPlane;
      if (!pointwise) cols.fill(0);
      gemmAccumulate(patch, outPlane, groupOutChannels, weightT, 0, dyData, dyOffset, cols, pointwise ? dxOffset : 0);
      if (!pointwise) col2imAccumulate(cols, dx, dxOffset, groupInChannels, inH, inW, kh, kw, p, outH, outW);
    }
  }
  return new Tensor(dx, [batch, inChannels, inH, inW]);
}

/**
 * dW = conv2d's weight gradient: for each group, Σ over images of dy_g (groupOut, outPlane) ·
 * im2col(x_g)ᵀ (outPlane, patch), a (groupOut, patch) block of dW (O, C/groups, kh, kw).
 */
function conv2dBackwardWeight(x: Tensor, dy: Tensor, p: Conv2dParams, kh: number, kw: number): Tensor {
  const [batch, inChannels, height, width] = x.shape;
  const [, outChannels, outH, outW] = dy.shape;
  const groupInChannels = inChannels / p.groups;
  const groupOutChannels = outChannels / p.groups;
  const patch = groupInChannels * kh * kw;
  const outPlane = outH * outW;
  const xData = x.f32;
  const dW = new Float32Array(outChannels * patch);
  const pointwise = isPointwise(kh, kw, p);
  const cols = new Float32Array(patch * outPlane);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < p.groups; g++) {
      const xOffset = (n * inChannels + g * groupInChannels) * height * width;
      if (!pointwise) im2col(xData, xOffset, groupInChannels, height, width, kh, kw, p, outH, outW, cols);
      const colsT = pointwise ? transpose(xData, xOffset, patch, outPlane) : transpose(cols, 0, patch, outPlane);
      const dyOffset = (n * outChannels + g * groupOutChannels) * outPlane;
      gemmAccumulate(groupOutChannels, patch, outPlane, dy.f32, dyOffset, colsT, 0, dW, g * groupOutChannels * patch);
    }
  }
  return new Tensor(dW, [outChannels, groupInChannels, kh, kw]);
}

/** Σ over n, h, w of dy (N, C, H, W), or over n of dy (N, C) → (C). */
function channelSums(dy: Tensor): Float32Array {
  const [batch, channels] = dy.shape;
  const plane = batch * channels === 0 ? 0 : dy.size / (batch * channels);
  const src = dy.f32;
  const sums = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < batch; n++) {
      const start = (n * channels + c) * plane;
      for (let j = start; j < start + plane; j++) sum += src[j];
    }
    sums[c] = sum;
  }
  return sums;
}

/**
 * Train-mode batch norm: y = gamma·x̂ + beta with x̂ = (x − mean)·invStd over (N, H, W).
 * dBeta = Σ dy, dGamma = Σ dy·x̂, and, since mean and invStd depend on x,
 * dx = gamma·invStd·(dy − Σdy/count − x̂·Σ(dy·x̂)/count). Without affine, gamma is 1.
 */
function batchNormBackward(x: Tensor, dy: Tensor, mean: Float64Array, invStd: Float64Array, gamma: Float32Array | null): BatchNormGradients {
  const [batch, channels] = x.shape;
  const plane = x.size / (batch * channels);
  const count = batch * plane;
  const xData = x.f32;
  const dyData = dy.f32;
  const dx = new Float32Array(x.size);
  const dGamma = new Float32Array(channels);
  const dBeta = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let n = 0; n < batch; n++) {
      const start = (n * channels + c) * plane;
      for (let j = start; j < start + plane; j++) {
        sumDy += dyData[j];
        sumDyXhat += dyData[j] * (xData[j] - mean[c]) * invStd[c];
      }
    }
    dBeta[c] = sumDy;
    dGamma[c] = sumDyXhat;
    const scale = (gamma ? gamma[c] : 1) * invStd[c];
    const meanDy = sumDy / count;
    const meanDyXhat = sumDyXhat / count;
    for (let n = 0; n < batch; n++) {
      const start = (n * channels + c) * plane;
      for (let j = start; j < start + plane; j++) {
        const xhat = (xData[j] - mean[c]) * invStd[c];
        dx[j] = scale * (dyData[j] - meanDy - xhat * meanDyXhat);
      }
    }
  }
  return { dx: new Tensor(dx, x.shape), dGamma, dBeta };
}

/**
 * Max pooling's gradient: each dy goes to the input that won its window, found as the forward
 * finds it (the first maximum in row-major window order; a NaN wins, the last NaN of a window
 * if several; a window of -Infinity gives it to its first valid input, as torch does).
 * Overlapping windows (stride < kernel) add up.
 */
function maxPool2dBackward(x: Tensor, dy: Tensor, p: Pool2dParams): Tensor {
  const [batch, channels, height, width] = x.shape;
  const [, , outH, outW] = dy.shape;
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  const src = x.f32;
  const dyData = dy.f32;
  const dx = new Float32Array(x.size);
  let o = 0;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++, o++) {
        let best = -Infinity;
        let winner = -1;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pw + kx * dw;
            if (ix < 0 || ix >= width) continue;
            const v = src[base + iy * width + ix];
            if (winner < 0 || v > best || Number.isNaN(v)) {
              best = v;
              winner = base + iy * width + ix;
            }
          }
        }
        if (winner >= 0) dx[winner] += dyData[o];
      }
    }
  }
  return new Tensor(dx, x.shape);
}

/** Adaptive average pooling's gradient: dy[oy, ox] / area to every input of its window (the forward's windows). */
function adaptiveAvgPool2dBackward(dy: Tensor, inH: number, inW: number): Tensor {
  const [batch, channels, outH, outW] = dy.shape;
  const dyData = dy.f32;
  const dx = new Float32Array(batch * channels * inH * inW);
  let o = 0;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * inH * inW;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = Math.floor((oy * inH) / outH);
      const y1 = Math.ceil(((oy + 1) * inH) / outH);
      for (let ox = 0; ox < outW; ox++, o++) {
        const x0 = Math.floor((ox * inW) / outW);
        const x1 = Math.ceil(((ox + 1) * inW) / outW);
        const share = dyData[o] / ((y1 - y0) * (x1 - x0));
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) dx[base + iy * inW + ix] += share;
        }
      }
    }
  }
  return new Tensor(dx, [batch, channels, inH, inW]);
}

/** relu's gradient from its output y: dy where y > 0, else 0. */
function reluBackward(y: Tensor, dy: Tensor): Tensor {
  const out = y.f32;
  const dyData = dy.f32;
  const dx = new Float32Array(y.size);
  for (let i = 0; i < dx.length; i++) dx[i] = out[i] > 0 ? dyData[i] : 0;
  return new Tensor(dx, y.shape);
}

/** op(a) (M, K) · op(b) (K, N) → (M, N), op transposing a stored (K, M) or (N, K) operand. */
function matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const n = transB ? b.shape[0] : b.shape[1];
  const left = transA ? transpose(a.f32, 0, k, m) : a.f32;
  const right = transB ? transpose(b.f32, 0, n, k) : b.f32;
  const c = new Float32Array(m * n);
  gemmAccumulate(m, n, k, left, 0, right, 0, c, 0);
  return new Tensor(c, [m, n]);
}

/** Every backward kernel of the Backend contract, as the reference computes it. */
export type BackwardKernels = Required<Pick<Backend,
  'conv2dBackwardInput' | 'conv2dBackwardWeight' | 'channelSums' | 'batchNormBackward' |
  'maxPool2dBackward' | 'adaptiveAvgPool2dBackward' | 'reluBackward' | 'matmul'>>;

export const referenceBackwardKernels: BackwardKernels = {
  conv2dBackwardInput,
  conv2dBackwardWeight,
  channelSums,
  batchNormBackward,
  maxPool2dBackward,
  adaptiveAvgPool2dBackward,
  reluBackward,
  matmul,
};
