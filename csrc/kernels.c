/*
 * The compute kernels of resnet-ts behind csrc/kernels.h: a packed, register-blocked GEMM
 * with the convolution epilogue fused into its store, implicit-GEMM convolution on NCHW,
 * pooling, linear and the elementwise ops, and their gradients for training (GEMM-based
 * convolution gradients on the same micro-kernels). One source for every target: AVX2+FMA and
 * portable C in the native addon, SIMD128 (optionally relaxed) in WebAssembly, NEON on arm64.
 *
 * No OS calls, no allocation, no libc beyond <stddef.h>/<stdint.h> and the intrinsics
 * headers, so it builds with clang --target=wasm32 and no sysroot. (Compilers may still turn
 * a copy or zero-fill loop into a memcpy/memset call: link with -mbulk-memory or supply them.)
 *
 * The convolution as a GEMM, per image n and group g (BLIS loop order, weights pre-packed):
 *   y[o, p] = Σ_k w[o, k] · x̂[k, p]     o < O/groups, p < OH·OW, k = (c, ky, kx) < C/groups·kh·kw
 *   A = w (M × K), packed once by rk_conv2d_pack into K blocks of MR-row panels:
 *       [block][panel][k][MR] (each block contiguous).
 *   B = x̂ (K × N), the im2col matrix, never materialised whole: each thread packs the block
 *       it is about to use (KC rows × NC pixels) into NR-column panels [panel][k][NR]. For a
 *       1×1 stride-1 unpadded convolution x̂ IS the NCHW input (row k = plane k): no im2col,
 *       the panels are plain row copies of the planes. For other unit-column-stride
 *       convolutions (3×3 stride 1), a B row that is NR consecutive inputs of one input row
 *       is not copied at all: the indirect micro-kernel reads it in place through a pointer.
 *   C = y, row o = output plane o (row stride OH·OW); the micro-kernel adds the bias,
 *       the residual and the ReLU as it stores the last K block.
 */
#include "kernels.h"

/* GCC turns the short copy and zero loops of the im2col packing (runs of at most NR floats)
   into calls to memmove/memset, which cost more than the copies; keep them as loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* One translation unit per ISA, in dependency order (every part is static, so a build
   exports only the RK_API entry points). */
#include "kernels/config.h"
#include "kernels/split.c"
#include "kernels/f32-gemm.c"
#include "kernels/conv-plan.c"
#include "kernels/winograd.c"
#include "kernels/conv-padded.c"
#include "kernels/im2col.c"
#include "kernels/conv.c"
#include "kernels/pool-linear-elementwise.c"
#include "kernels/gemm.c"
#include "kernels/conv-backward.c"
#include "kernels/batchnorm-backward.c"
#include "kernels/pool-elementwise-backward.c"
