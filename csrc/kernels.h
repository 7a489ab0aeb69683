/*
 * The compute kernels of resnet-ts: one C source (kernels.c) compiled two ways, into the
 * native Node addon (AVX2/FMA or portable) and into WebAssembly (SIMD128 + relaxed FMA).
 *
 * Conventions
 * - Tensors are float32, contiguous, row-major NCHW; weights (O, C/groups, kh, kw).
 * - Every kernel computes only its own slice of the output for thread `tid` of `nthreads`
 *   (ggml style): the caller runs tid = 0 .. nthreads-1 concurrently and waits for all of
 *   them. Kernels never synchronise among themselves, so a slice must not read what another
 *   thread writes in the same call. The thread pools know nothing about ops.
 * - No kernel allocates. Scratch memory is passed in; its size comes from the *_floats query.
 * - Each kernel's comment says which axis it splits over threads and why.
 */
#ifndef RESNET_KERNELS_H
#define RESNET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The geometry of one 2-D convolution (out_h/out_w precomputed by the caller, floor mode). */
typedef struct {
  int32_t batch, in_channels, in_h, in_w;
  int32_t out_channels, out_h, out_w;
  int32_t kernel_h, kernel_w;
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
  int32_t dilation_h, dilation_w;
  int32_t groups;
} rk_conv2d_shape;

/* Epilogue flags of rk_conv2d. */
enum { RK_RELU = 1 };

/* Flags of rk_matmul: the operand is stored transposed. */
enum { RK_TRANS_A = 1, RK_TRANS_B = 2 };

/* Layouts of rk_conv2d_pack's output (rk_conv2d_packing). */
enum { RK_PACKING_GEMM = 1, RK_PACKING_WINOGRAD = 2 };

#endif /* RESNET_KERNELS_H */

/*
 * The entry points, declared once: RK_KERNELS(X) calls X(return type, name, (parameters))
 * for each. From this one list come the C declarations below, the native addon's table of
 * each build's functions (csrc/native/addon.c) and the WebAssembly exports
 * (scripts/build-wasm.sh reads the names from here). A new kernel is one X line here, its C
 * body, its Node-API wrapper and its TypeScript op.
 *
 * Each kernel computes its (tid, nthreads) slice; see the conventions above.
 * - conv2d_packing: which layout conv2d_pack writes for this geometry, RK_PACKING_GEMM
 *   (MR-row panels of the weight) or RK_PACKING_WINOGRAD (the transformed U). The choice
 *   depends on the input's size too (Winograd needs enough output tiles), so a caller that
 *   caches packed weights must key them by this as well as by the weight's own geometry.
 * - conv2d_packed_floats: floats of conv2d_pack's output for this geometry.
 * - conv2d_pack: rearranges weight (O, C/groups, kh, kw), output channel o multiplied by
 *   scale[o] (BatchNorm folded in; scale NULL: none), once into the layout the GEMM
 *   micro-kernel reads. The product is w·scale rounded to float32, as the reference's
 *   foldWeightScale computes it. Threads split whole MR-row panels of output channels (each
 *   panel's packed rows are disjoint). Done once per weight and cached by the caller.
 * - conv2d_scratch_floats: floats of scratch one call of conv2d needs (calls running at
 *   once need one block each).
 * - conv2d_slices: how many slices (conv2d's nthreads) to cut one convolution into for
 *   `nthreads` threads that claim slices in turn: more than threads where slices are
 *   disjoint parts of one pass (so a slower thread takes fewer), as many as threads where
 *   each slice repeats some work.
 * - conv2d: y (N, O, OH, OW) = relu?(conv(x, w) + bias[o] + residual). x (N, C, H, W);
 *   packed from conv2d_pack; bias (O) or NULL; residual (N, O, OH, OW) or NULL; flags:
 *   RK_RELU. scratch: conv2d_scratch_floats(s) floats that no call running at the same time
 *   uses. Give each thread one block that it keeps for all the slices it runs, not one per
 *   slice: the block then stays in that thread's cache.
 * - max_pool2d: y (N, C, OH, OW) = max over each window of x (N, C, H, W); padding never wins.
 * - adaptive_avg_pool2d: y (N, C, OH, OW), the mean over torch's adaptive windows
 *   [floor(i·H/OH), ceil((i+1)·H/OH)).
 * - linear: y (N, O) = x (N, I) · w (O, I)ᵀ + bias (O or NULL).
 * - channel_affine: y[n,c,i] = x[n,c,i] · scale[c] + shift[c] over (N, C, plane).
 * - add: y = a + b (n elements); then max(y, 0) if flags & RK_RELU.
 * - relu: y = max(x, 0) (n elements).
 * Backward (training); each writes every element of its outputs (no accumulation):
 * - gemm_scratch_floats: floats of scratch one thread of conv2d_backward_input or matmul
 *   needs (a thread keeps its block for all its slices).
 * - conv2d_backward_weight_scratch_floats: floats of scratch one thread of
 *   conv2d_backward_weight needs for this geometry.
 * - conv2d_backward_input: dx (N, C, H, W) = the gradient of conv2d w.r.t. x, given dy
 *   (N, O, OH, OW) and the weight (O, C/groups, kh, kw) as it is (not packed).
 * - conv2d_backward_weight: dw (O, C/groups, kh, kw) = the gradient w.r.t. the weight, given
 *   x and dy, summed over the batch.
 * - channel_sums: sums (C) = Σ over n and the plane of dy (N, C, plane); bias gradients, dβ.
 * - batch_norm_backward: dx, dgamma, dbeta of train-mode batch norm over x, dy (N, C, plane),
 *   with the batch mean and inv_std (C, float64) the forward normalised with and gamma (C) or
 *   NULL (no affine: gamma 1; dgamma and dbeta are still written).
 * - max_pool2d_backward: dx (N, C, H, W) of max_pool2d (same arguments, plus x and dy).
 * - adaptive_avg_pool2d_backward: dx (N, C, H, W) of adaptive_avg_pool2d from dy (N, C, OH, OW).
 * - relu_backward: dx = dy where y > 0, else 0 (n elements; y is relu's output).
 * - matmul: c (m × n) = op(a) · op(b); flags RK_TRANS_A (a stored k × m), RK_TRANS_B (b
 *   stored n × k).
 * - isa: which SIMD path this build uses: "avx512f", "avx2-fma", "wasm-simd128-relaxed",
 *   "wasm-simd128", "neon" or "scalar".
 */
#define RK_KERNELS(X)                                                                                              \
  X(int32_t, conv2d_packing, (const rk_conv2d_shape *s))                                                           \
  X(size_t, conv2d_packed_floats, (const rk_conv2d_shape *s))                                                      \
  X(void, conv2d_pack,                                                                                             \
    (const rk_conv2d_shape *s, const float *weight, const double *scale, float *packed, int32_t tid,              \
     int32_t nthreads))                                                                                            \
  X(size_t, conv2d_scratch_floats, (const rk_conv2d_shape *s))                                                     \
  X(int32_t, conv2d_slices, (const rk_conv2d_shape *s, int32_t nthreads))                                          \
  X(void, conv2d,                                                                                                  \
    (const rk_conv2d_shape *s, const float *x, const float *packed, const float *bias, const float *residual,      \
     int32_t flags, float *y, float *scratch, int32_t tid, int32_t nthreads))                                      \
  X(void, max_pool2d,                                                                                              \
    (const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w, int32_t kernel_h, int32_t kernel_w, \
     int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w, int32_t dilation_h, int32_t dilation_w,      \
     int32_t out_h, int32_t out_w, float *y, int32_t tid, int32_t nthreads))                                       \
  X(void, adaptive_avg_pool2d,                                                                                     \
    (const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w, int32_t out_h, int32_t out_w,    \
     float *y, int32_t tid, int32_t nthreads))                                                                     \
  X(void, linear,                                                                                                  \
    (const float *x, const float *w, const float *bias, int32_t batch, int32_t in_features, int32_t out_features,  \
     float *y, int32_t tid, int32_t nthreads))                                                                     \
  X(void, channel_affine,                                                                                          \
    (const float *x, const float *scale, const float *shift, int32_t batch, int32_t channels, int32_t plane,       \
     float *y, int32_t tid, int32_t nthreads))                                                                     \
  X(void, add, (const float *a, const float *b, int64_t n, int32_t flags, float *y, int32_t tid, int32_t nthreads)) \
  X(void, relu, (const float *x, int64_t n, float *y, int32_t tid, int32_t nthreads))                              \
  X(size_t, gemm_scratch_floats, (void))                                                                           \
  X(void, conv2d_backward_input,                                                                                   \
    (const rk_conv2d_shape *s, const float *dy, const float *weight, float *dx, float *scratch, int32_t tid,       \
     int32_t nthreads))                                                                                            \
  X(size_t, conv2d_backward_weight_scratch_floats, (const rk_conv2d_shape *s))                                     \
  X(void, conv2d_backward_weight,                                                                                  \
    (const rk_conv2d_shape *s, const float *x, const float *dy, float *dw, float *scratch, int32_t tid,            \
     int32_t nthreads))                                                                                            \
  X(void, channel_sums,                                                                                            \
    (const float *dy, int32_t batch, int32_t channels, int32_t plane, float *sums, int32_t tid, int32_t nthreads))  \
  X(void, batch_norm_backward,                                                                                     \
    (const float *x, const float *dy, const double *mean, const double *inv_std, const float *gamma, int32_t batch, \
     int32_t channels, int32_t plane, float *dx, float *dgamma, float *dbeta, int32_t tid, int32_t nthreads))      \
  X(void, max_pool2d_backward,                                                                                     \
    (const float *x, const float *dy, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,                 \
     int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w,          \
     int32_t dilation_h, int32_t dilation_w, int32_t out_h, int32_t out_w, float *dx, int32_t tid, int32_t nthreads)) \
  X(void, adaptive_avg_pool2d_backward,                                                                            \
    (const float *dy, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w, int32_t out_h, int32_t out_w,   \
     float *dx, int32_t tid, int32_t nthreads))                                                                    \
  X(void, relu_backward, (const float *y, const float *dy, int64_t n, float *dx, int32_t tid, int32_t nthreads))   \
  X(void, matmul,                                                                                                  \
    (const float *a, const float *b, int32_t m, int32_t n, int32_t k, int32_t flags, float *c, float *scratch,     \
     int32_t tid, int32_t nthreads))                                                                               \
  X(const char *, isa, (void))

/*
 * RK_API(name) spells each entry point's symbol: rk_<name> unless the includer defines it
 * first. The native addon links three builds of kernels.c into one binary (AVX-512F,
 * AVX2+FMA and portable), compiling two of them with RK_API(name) = rk_avx512_##name and
 * rk_avx2_##name (csrc/native/kernels_avx512.c, kernels_avx2.c). This part has no include
 * guard: the addon includes the header once per spelling to declare every set.
 */
#ifndef RK_API
#define RK_API(name) rk_##name
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define RK_DECLARE_KERNEL(ret, name, params) ret RK_API(name) params;
RK_KERNELS(RK_DECLARE_KERNEL)
#undef RK_DECLARE_KERNEL

#ifdef __cplusplus
}
#endif
