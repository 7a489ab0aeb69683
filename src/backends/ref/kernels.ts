// The reference backend: plain TypeScript kernels, readable in one sitting. They are the
// oracle that every fast backend is tested against, so clarity wins over speed here; the
// one concession is that convolution is im2col + a row-major GEMM, so a ResNet-50 forward
// takes seconds rather than minutes.

import { Tensor } from '../../core/tensor.js';
import { foldWeightScale, type Backend, type ChannelMoments, type Conv2dParams, type ConvEpilogue, type Pool2dParams } from '../backend.js';

/**
 * c (M, N) += a (M, K) · b (K, N), all row-major with the given offsets.
 * Blocks of 4 rows × 4 columns of c are summed in local variables over the whole of K
 * (16 products per 8 loads); the leftover rows and columns take the plain i-k-j loop.
 */
export function gemmAccumulate(
  m: number, n: number, k: number,
  a: Float32Array, aOffset: number,
  b: Float32Array, bOffset: number,
  c: Float32Array, cOffset: number,
): void {
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const a0 = aOffset + i * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    for (let j = 0; j < n4; j += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0, bp = bOffset + j; p < k; p++, bp += n) {
        const b0 = b[bp], b1 = b[bp + 1], b2 = b[bp + 2], b3 = b[bp + 3];
        const x0 = a[a0 + p], x1 = a[a1 + p], x2 = a[a2 + p], x3 = a[a3 + p];
        c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
        c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
        c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
        c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
      }
      const r0 = cOffset + i * n + j;
      const r1 = r0 + n;
      const r2 = r1 + n;
      const r3 = r2 + n;
      c[r0] += c00; c[r0 + 1] += c01; c[r0 + 2] += c02; c[r0 + 3] += c03;
      c[r1] += c10; c[r1 + 1] += c11; c[r1 + 2] += c12; c[r1 + 3] += c13;
      c[r2] += c20; c[r2 + 1] += c21; c[r2 + 2] += c22; c[r2 + 3] += c23;
      c[r3] += c30; c[r3 + 1] += c31; c[r3 + 2] += c32; c[r3 + 3] += c33;
    }
  }
  // Leftovers: rows m4.. over all columns, then columns n4.. of the blocked rows.
  gemmPlain(m4, m, 0, n, n, k, a, aOffset, b, bOffset, c, cOffset);
  gemmPlain(0, m4, n4, n, n, k, a, aOffset, b, bOffset, c, cOffset);
}

/** c[i, j] += Σp a[i, p] b[p, j] for rows [i0, i1) and columns [j0, j1). */
function gemmPlain(
  i0: number, i1: number, j0: number, j1: number, n: number, k: number,
  a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, c: Float32Array, cOffset: number,
): void {
  if (j0 >= j1) return;
  for (let i = i0; i < i1; i++) {
    const cRow = cOffset + i * n;
    const aRow = aOffset + i * k;
    for (let p = 0; p < k; p++) {
      const aValue = a[aRow + p];
      const bRow = bOffset + p * n;
      for (let j = j0; j < j1; j++) c[cRow + j] += aValue * b[bRow + j];
    }
  }
}

/**
 * Unfolds one group of one image for convolution.
 * x is (C, H, W) starting at xOffset; cols is (channels * kh * kw, outH * outW):
 * row (c, ky, kx), column (oy, ox) holds x[c, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw] or 0 outside.
 */
function im2col(
  x: Float32Array, xOffset: number, channels: number, height: number, width: number,
  kh: number, kw: number, p: Conv2dParams, outH: number, outW: number, cols: Float32Array,
): void {
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    const plane = xOffset + c * height * width;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, row++) {
        const colRow = row * outH * outW;
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * sh - ph + ky * dh;
          const dst = colRow + oy * outW;
          if (iy < 0 || iy >= height) {
            cols.fill(0, dst, dst + outW);
            continue;
          }
          const src = plane + iy * width;
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * sw - pw + kx * dw;
            cols[dst + ox] = ix >= 0 && ix < width ? x[src + ix] : 0;
          }
        }
      }
    }
  }
}

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
  return { name: 'ref', setThreads, getThreads, conv2d, channelAffine, channelMoments, relu, add, maxPool2d, adaptiveAvgPool2d, linear };
}
