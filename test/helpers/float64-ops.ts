// Float64 twins of the forwards of the differentiable ops, for finite differences in float64
// (test/autograd.test.ts): plain loops in double precision, written from torch's definitions
// rather than from our kernels (no im2col, no GEMM, no folded batch norm), so that a central
// difference of a twin is the exact derivative to ~1e-10 and checks the float32 reference
// backend's backward formulas to float32 rounding. Each twin's values are first compared with
// the reference's float32 forward, so a twin that strays from the op is caught too.

export interface Array64 {
  data: Float64Array;
  shape: number[];
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function conv2d64(
  x: Array64, w: Array64, bias: Array64 | null,
  stride: readonly number[], padding: readonly number[], dilation: readonly number[], groups: number,
): Array64 {
  const [n, c, h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const og = o / groups;
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) {
          let s = bias ? bias.data[oc] : 0;
          for (let ic = 0; ic < cg; ic++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * stride[0] - padding[0] + ky * dilation[0];
                const ix = xo * stride[1] - padding[1] + kx * dilation[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x.data[((b * c + g * cg + ic) * h + iy) * wd + ix] * w.data[((oc * cg + ic) * kh + ky) * kw + kx];
              }
          out[((b * o + oc) * oh + y) * ow + xo] = s;
        }
    }
  return { data: out, shape: [n, o, oh, ow] };
}

/** Batch norm over (N, H, W): the batch's mean and biased variance in training, the running ones otherwise. */
export function batchNorm64(
  x: Array64, weight: Array64, bias: Array64, runningMean: Array64, runningVar: Array64, training: boolean, eps: number,
): Array64 {
  const [n, c] = x.shape;
  const plane = size(x.shape) / (n * c);
  const out = new Float64Array(x.data.length);
  for (let ch = 0; ch < c; ch++) {
    let mean = runningMean.data[ch];
    let variance = runningVar.data[ch];
    if (training) {
      let s = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < plane; i++) s += x.data[(b * c + ch) * plane + i];
      mean = s / (n * plane);
      let q = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < plane; i++) q += (x.data[(b * c + ch) * plane + i] - mean) ** 2;
      variance = q / (n * plane);
    }
    const inv = 1 / Math.sqrt(variance + eps);
    for (let b = 0; b < n; b++)
      for (let i = 0; i < plane; i++) {
        const at = (b * c + ch) * plane + i;
        out[at] = (x.data[at] - mean) * inv * weight.data[ch] + bias.data[ch];
      }
  }
  return { data: out, shape: [...x.shape] };
}

export function relu64(x: Array64): Array64 {
  return { data: x.data.map((v) => (v > 0 ? v : 0)), shape: [...x.shape] };
}

export function maxPool64(x: Array64, kernel: readonly number[], stride: readonly number[], padding: readonly number[], dilation: readonly number[]): Array64 {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) / stride[1]) + 1;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < oh; y++)
      for (let xo = 0; xo < ow; xo++) {
        let m = -Infinity;
        for (let ky = 0; ky < kernel[0]; ky++)
          for (let kx = 0; kx < kernel[1]; kx++) {
            const iy = y * stride[0] - padding[0] + ky * dilation[0];
            const ix = xo * stride[1] - padding[1] + kx * dilation[1];
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) m = Math.max(m, x.data[(p * h + iy) * w + ix]);
          }
        out[(p * oh + y) * ow + xo] = m;
      }
  return { data: out, shape: [n, c, oh, ow] };
}

/** torch's adaptive windows: rows [floor(i·H/OH), ceil((i+1)·H/OH)), columns likewise. */
export function adaptiveAvgPool64(x: Array64, outH: number, outW: number): Array64 {
  const [n, c, h, w] = x.shape;
  const out = new Float64Array(n * c * outH * outW);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < outH; i++)
      for (let j = 0; j < outW; j++) {
        const y0 = Math.floor((i * h) / outH), y1 = Math.ceil(((i + 1) * h) / outH);
        const x0 = Math.floor((j * w) / outW), x1 = Math.ceil(((j + 1) * w) / outW);
        let s = 0;
        for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += x.data[(p * h + y) * w + xx];
        out[(p * outH + i) * outW + j] = s / ((y1 - y0) * (x1 - x0));
      }
  return { data: out, shape: [n, c, outH, outW] };
}

/** x (N, I) · wᵀ (I, O) + bias (O). */
export function linear64(x: Array64, w: Array64, bias: Array64 | null): Array64 {
  const [n, inF] = x.shape;
  const outF = w.shape[0];
  const out = new Float64Array(n * outF);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias.data[o] : 0;
      for (let i = 0; i < inF; i++) s += x.data[b * inF + i] * w.data[o * inF + i];
      out[b * outF + o] = s;
    }
  return { data: out, shape: [n, outF] };
}

export function add64(a: Array64, b: Array64): Array64 {
  return { data: a.data.map((v, i) => v + b.data[i]), shape: [...a.shape] };
}

/** log_softmax over dimension 1 of (N, C). */
export function logSoftmax64(x: Array64): Array64 {
  const [n, c] = x.shape;
  const out = new Float64Array(n * c);
  for (let b = 0; b < n; b++) {
    const row = x.data.subarray(b * c, (b + 1) * c);
    const m = Math.max(...row);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const log = m + Math.log(s);
    for (let j = 0; j < c; j++) out[b * c + j] = row[j] - log;
  }
  return { data: out, shape: [n, c] };
}

/** Per-sample cross-entropy (reduction 'none') with label smoothing ε: −(1 − ε)·log p[t] − ε/C · Σ_j log p[j]. */
export function crossEntropy64(x: Array64, target: readonly number[], labelSmoothing: number): Array64 {
  const [n, c] = x.shape;
  const logp = logSoftmax64(x).data;
  const out = new Float64Array(n);
  for (let b = 0; b < n; b++) {
    let all = 0;
    for (let j = 0; j < c; j++) all += logp[b * c + j];
    out[b] = -(1 - labelSmoothing) * logp[b * c + target[b]] - (labelSmoothing / c) * all;
  }
  return { data: out, shape: [n] };
}

/** The option-A shortcut: x[:, :, ::stride, ::stride] with `before` and `after` zero channels around it. */
export function subsamplePadChannels64(x: Array64, stride: number, before: number, after: number): Array64 {
  const [n, c, h, w] = x.shape;
  const oh = Math.ceil(h / stride), ow = Math.ceil(w / stride);
  const oc = before + c + after;
  const out = new Float64Array(n * oc * oh * ow);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) out[((b * oc + before + ch) * oh + y) * ow + xo] = x.data[((b * c + ch) * h + y * stride) * w + xo * stride];
  return { data: out, shape: [n, oc, oh, ow] };
}
