// The two building blocks of the reference's convolutions, forward and backward: a plain
// row-major GEMM and im2col, the unfolding of an image into the columns a convolution multiplies.

import type { Conv2dParams } from '../backend.js';

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
export function im2col(
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
