// What the backends built on csrc/kernels.h (native and wasm) share about its C API: the
// rk_conv2d_shape fields and what a packed weight depends on (besides the weight tensor's
// version, Tensor.version).

import type { Shape, Tensor } from '../core/tensor.js';
import type { Conv2dParams } from './backend.js';

/** rk_conv2d_shape's fields, in kernels.h's order. */
export function convShapeFields(x: Tensor, weight: Tensor, p: Conv2dParams, outH: number, outW: number): number[] {
  return convShapeOf(x.shape, weight.shape, p, outH, outW);
}

/** rk_conv2d_shape's fields from the shapes of the input (N, C, H, W) and weight (O, C/groups, kh, kw). */
export function convShapeOf(xShape: Shape, weightShape: Shape, p: Conv2dParams, outH: number, outW: number): number[] {
  const [batch, inChannels, inH, inW] = xShape;
  const [outChannels, , kh, kw] = weightShape;
  return [
    batch, inChannels, inH, inW, outChannels, outH, outW, kh, kw,
    p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], p.groups,
  ];
}

/** RK_TRANS_A and RK_TRANS_B of kernels.h: rk_matmul's flags. */
export function matmulFlags(transA: boolean, transB: boolean): number {
  return (transA ? 1 : 0) | (transB ? 2 : 0);
}

/**
 * What a packed weight depends on: the layout rk_conv2d_packing names for the geometry (GEMM
 * panels or Winograd's U: the choice depends on the input's size as well, so one weight run at
 * two input sizes may need both), and in_channels, out_channels, kernel_h, kernel_w, stride,
 * dilation and groups of rk_conv2d_shape; not the input's size or the padding otherwise.
 */
export function packingKey(shape: ArrayLike<number>, layout: number): string {
  return `${layout}:${[1, 4, 7, 8, 9, 10, 13, 14, 15].map((field) => shape[field]).join(',')}`;
}
