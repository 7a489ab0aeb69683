/*
 * The compute kernels of resnet-ts behind csrc/kernels.h: a packed, register-blocked GEMM
 * with the convolution epilogue fused into its store, implicit-GEMM convolution on NCHW,
 * pooling, linear and the elementwise ops. One source for every target: AVX2+FMA and
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

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>
#define RK_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define RK_AVX2 1
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define RK_VEC4 1
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define RK_VEC4 1
#endif

/* Register tile MR × NR of the micro-kernel, and the cache blocking around it:
   KC rows of B per block (a KC × NR panel is 16 KiB with AVX2: half of L1),
   MC rows of A per block (MC × KC stays in L2 while the B panels stream),
   at most NC pixels per packed B block (KC × NC, also L2; a thread's pixels are cut into
   equal chunks of whole panels, so a 14×14 plane is one chunk and a 28×28 one four, not
   several full chunks and a sliver that streams all of A again for one panel). */
#if defined(RK_AVX512)
/* 12 rows × 2 zmm: 24 accumulators, 2 loads of B and 12 broadcasts of A per 24 FMAs, so the
   two FMA pipes, not the load ports, set the pace (8 × 32 measured the same over whole
   ResNet-18/50 forwards: faster on 64-channel layers, slower on the 3×3s). A KC × NR panel of B is 32 KiB, A's 12 KiB: both in a 48 KiB
   L1. A is prefetched 16 k-steps ahead: in a forward pass each weight is touched once, so a
   row panel's A arrives from memory, not from L2 (1-4% on ResNet-50, one thread). */
#define MR 12
#define NR 32
#define RK_A_PREFETCH (MR * 16)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 8)
#elif defined(RK_AVX2)
#define MR 6
#define NR 16
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
#else
#define MR 4
#define NR 8
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
#endif

#define RK_INLINE static inline __attribute__((always_inline))

static inline int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }

/* [begin, end) of thread tid's share of n units, in whole multiples of `align` units
   (align 16 floats = one cache line, so neighbours never write the same line). */
static void split_range(int64_t n, int32_t tid, int32_t nthreads, int64_t align, int64_t *begin, int64_t *end) {
  const int64_t chunks = (n + align - 1) / align;
  const int64_t b = chunks * tid / nthreads * align;
  const int64_t e = chunks * (tid + 1) / nthreads * align;
  *begin = b < n ? b : n;
  *end = e < n ? e : n;
}

/* Slice tid of nthreads of `rows` output channels in whole MR-row panels: [*m0, *m1), m0 a
   multiple of MR; false when the slice is empty. */
static int32_t row_slice(int32_t rows, int32_t tid, int32_t nthreads, int32_t *m0, int32_t *m1) {
  const int32_t panels = ceil_div(rows, MR);
  *m0 = (int32_t)((int64_t)panels * tid / nthreads) * MR;
  *m1 = min_i32(rows, (int32_t)((int64_t)panels * (tid + 1) / nthreads) * MR);
  return *m0 < *m1;
}

/* ---------------------------------------------------------------------------------------
 * Micro-kernels. Each computes one tile of C:
 *   c (mr × nr, row stride ldc) = [c +] a (kc × MR, packed rows) · b (kc × nr, row stride ldb)
 * then, when ep is given (the last K block), adds bias[r] and residual (row stride ldc) and
 * applies ReLU. The indirect variants (f32_igemm_*, XNNPACK's name) read row k of b at
 * rows[k] instead: the implicit-GEMM convolution points straight into the input where a B
 * row is NR consecutive inputs of one input row, instead of copying it.
 * a and b are read for the full MRV × NRV register tile (packed A is zero-padded to MR rows,
 * packed B to NR columns; rows read in place are NR inputs long); only mr × nr is stored.
 * Variants with fewer rows (MRV < MR) serve the last row panel of small groups (ResNeXt's 4
 * channels per group) without computing padding rows.
 * ------------------------------------------------------------------------------------- */

typedef struct {
  const float *bias;     /* bias of the tile's first row, or NULL */
  const float *residual; /* residual at the tile's first element, row stride ldc, or NULL */
  int32_t relu;
} tile_epilogue;

typedef void (*gemm_tile_fn)(size_t kc, const float *a, const float *b, size_t ldb, const float *const *rows, float *c,
                             size_t ldc, int32_t mr, int32_t nr, int32_t accumulate, const tile_epilogue *ep);

/* The store for partial tiles (and the scalar kernel): acc is MR × NR, row-major. */
static void tile_store_scalar(const float *acc, float *c, size_t ldc, int32_t mr, int32_t nr, int32_t accumulate,
                              const tile_epilogue *ep) {
  for (int32_t r = 0; r < mr; r++) {
    float *cr = c + (size_t)r * ldc;
    const float *ar = acc + r * NR;
    const float bias = ep && ep->bias ? ep->bias[r] : 0.0f;
    const float *res = ep && ep->residual ? ep->residual + (size_t)r * ldc : 0;
    for (int32_t j = 0; j < nr; j++) {
      float v = ar[j];
      if (accumulate) v += cr[j];
      if (ep) {
        v += bias;
        if (res) v += res[j];
        /* v < 0 ? 0 : v keeps NaN, as the reference epilogue does. */
        if (ep->relu && v < 0.0f) v = 0.0f;
      }
      cr[j] = v;
    }
  }
}

#if defined(RK_AVX512) || defined(RK_AVX2) || defined(RK_VEC4)

/* The vector operations the tiles use: `vec` holds VL floats (16 in a zmm register, 8 in a
   ymm, 4 in SIMD128 or NEON). vec_relu keeps NaN (v < 0 ? 0 : v), as the reference
   epilogue does. */
#if defined(RK_AVX512)
#define VL 16
typedef __m512 vec;
#define vec_zero() _mm512_setzero_ps()
#define vec_load(p) _mm512_loadu_ps(p)
#define vec_store(p, v) _mm512_storeu_ps(p, v)
#define vec_splat_load(p) _mm512_set1_ps(*(p))
#define vec_add(a, b) _mm512_add_ps(a, b)
#define vec_madd(a, b, acc) _mm512_fmadd_ps(a, b, acc)
/* max(0, v) returns its second operand, v, when v is NaN. */
#define vec_relu(v) _mm512_max_ps(_mm512_setzero_ps(), v)
#define RK_TILE_ISA avx512f
#elif defined(RK_AVX2)
#define VL 8
typedef __m256 vec;
#define vec_zero() _mm256_setzero_ps()
#define vec_load(p) _mm256_loadu_ps(p)
#define vec_store(p, v) _mm256_storeu_ps(p, v)
#define vec_splat_load(p) _mm256_broadcast_ss(p)
#define vec_add(a, b) _mm256_add_ps(a, b)
#define vec_madd(a, b, acc) _mm256_fmadd_ps(a, b, acc)
/* max(0, v) returns its second operand, v, when v is NaN. */
#define vec_relu(v) _mm256_max_ps(_mm256_setzero_ps(), v)
#define RK_TILE_ISA avx2_fma
#elif defined(__wasm_simd128__)
#define VL 4
typedef v128_t vec;
#define vec_zero() wasm_f32x4_splat(0.0f)
#define vec_load(p) wasm_v128_load(p)
#define vec_store(p, v) wasm_v128_store(p, v)
#define vec_splat_load(p) wasm_v128_load32_splat(p)
#define vec_add(a, b) wasm_f32x4_add(a, b)
/* pmax(v, 0) = v < 0 ? 0 : v. */
#define vec_relu(v) wasm_f32x4_pmax(v, wasm_f32x4_splat(0.0f))
#if defined(__wasm_relaxed_simd__)
/* a·b + acc, fused or not as the engine likes. The builtin, not wasm_f32x4_relaxed_madd:
   clang 16's wasm_simd128.h has no relaxed intrinsics yet. */
typedef float rk_f32x4 __attribute__((vector_size(16)));
#define vec_madd(a, b, acc) \
  ((v128_t)__builtin_wasm_relaxed_madd_f32x4((rk_f32x4)(a), (rk_f32x4)(b), (rk_f32x4)(acc)))
#define RK_TILE_ISA wasmrelaxedsimd
#else
#define vec_madd(a, b, acc) wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#define RK_TILE_ISA wasmsimd
#endif
#else
#define VL 4
typedef float32x4_t vec;
#define vec_zero() vdupq_n_f32(0.0f)
#define vec_load(p) vld1q_f32(p)
#define vec_store(p, v) vst1q_f32(p, v)
#define vec_splat_load(p) vld1q_dup_f32(p)
#define vec_add(a, b) vaddq_f32(a, b)
#define vec_madd(a, b, acc) vfmaq_f32(acc, a, b)
#define vec_relu(v) vbslq_f32(vcltq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), v)
#define RK_TILE_ISA neon
#endif

/* RK_ROW(r) for every row a tile can have (MR ≤ 12); rows past MRV compile away. */
#define RK_ALL_ROWS                                                                                  \
  RK_ROW(0) RK_ROW(1) RK_ROW(2) RK_ROW(3) RK_ROW(4) RK_ROW(5) RK_ROW(6) RK_ROW(7) RK_ROW(8) RK_ROW(9) \
  RK_ROW(10) RK_ROW(11)
_Static_assert(MR <= 12, "the vector tile names 12 rows of accumulators");

/* Stores one vector of row r at column offset `col` of the tile, with the epilogue. */
RK_INLINE void store_vec(vec v, float *c, size_t ldc, int r, int col, int32_t accumulate, const tile_epilogue *ep) {
  float *p = c + (size_t)r * ldc + col;
  if (accumulate) v = vec_add(v, vec_load(p));
  if (ep) {
    if (ep->bias) v = vec_add(v, vec_splat_load(ep->bias + r));
    if (ep->residual) v = vec_add(v, vec_load(ep->residual + (size_t)r * ldc + col));
    if (ep->relu) v = vec_relu(v);
  }
  vec_store(p, v);
}

/* MR × (2·VL): 6×16 with AVX2+FMA (12 ymm accumulators, 2 of B, one broadcast of A per row:
   12 FMAs per 2 loads and 6 broadcasts), 4×8 on 128-bit vectors (8 accumulators); and the
   MRV × NRV tiles below them. The accumulators are named, not an array, so that they live
   in registers; rows past MRV compile away. */
RK_INLINE void f32_gemm_tile__vec(const int MRV, const int NRV, const int INDIRECT, size_t kc, const float *restrict a,
                                  const float *restrict b, size_t ldb, const float *const *rows, float *restrict c,
                                  size_t ldc, int32_t mr, int32_t nr, int32_t accumulate, const tile_epilogue *ep) {
  /* What the store will read (the residual, or C when accumulating) is rows ldc apart, too
     many streams for the hardware prefetcher: ask for its lines now, so that they arrive
     while the tile computes. */
  for (int r = 0; r < MRV; r++) {
    if (ep && ep->residual) {
      __builtin_prefetch(ep->residual + (size_t)r * ldc);
      __builtin_prefetch(ep->residual + (size_t)r * ldc + NRV - 1);
    }
    if (accumulate) {
      __builtin_prefetch(c + (size_t)r * ldc);
      __builtin_prefetch(c + (size_t)r * ldc + NRV - 1);
    } else if (ep) {
      __builtin_prefetch(c + (size_t)r * ldc, 1);
      __builtin_prefetch(c + (size_t)r * ldc + NRV - 1, 1);
    }
  }
  vec c0a = vec_zero(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
  vec c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
  vec c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a, c8a = c0a, c8b = c0a;
  vec c9a = c0a, c9b = c0a, c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a;
  for (size_t k = 0; k < kc; k++) {
    const float *bk = INDIRECT ? rows[k] : b;
#if defined(RK_A_PREFETCH)
    /* A streams from memory the first time a row panel is used (weights touched once per
       forward); ask for it a few lines ahead. */
    __builtin_prefetch(a + RK_A_PREFETCH);
#endif
    const vec b0 = vec_load(bk);
    const vec b1 = NRV > VL ? vec_load(bk + VL) : b0;
    if (!INDIRECT) b += ldb;
#define RK_ROW(r)                                       \
  if (MRV > r) {                                        \
    const vec av = vec_splat_load(a + r);               \
    c##r##a = vec_madd(av, b0, c##r##a);                \
    if (NRV > VL) c##r##b = vec_madd(av, b1, c##r##b);  \
  }
    RK_ALL_ROWS
#undef RK_ROW
    a += MR;
  }
  if (mr == MRV && nr == NRV) {
#define RK_ROW(r)                                                    \
  if (MRV > r) {                                                     \
    store_vec(c##r##a, c, ldc, r, 0, accumulate, ep);                \
    if (NRV > VL) store_vec(c##r##b, c, ldc, r, VL, accumulate, ep); \
  }
    RK_ALL_ROWS
#undef RK_ROW
    return;
  }
  float tile[MR * NR] __attribute__((aligned(64)));
#define RK_ROW(r)                                         \
  if (MRV > r) {                                          \
    vec_store(tile + r * NR, c##r##a);                    \
    if (NRV > VL) vec_store(tile + r * NR + VL, c##r##b); \
  }
  RK_ALL_ROWS
#undef RK_ROW
  tile_store_scalar(tile, c, ldc, mr, nr, accumulate, ep);
}

#define RK_TILE_BODY f32_gemm_tile__vec

#else

/* Portable 4×8: plain loops over a local tile; compilers keep it in vector registers
   (SSE2 on x86-64) because every lane is independent. */
RK_INLINE void f32_gemm_tile__scalar(const int MRV, const int NRV, const int INDIRECT, size_t kc, const float *restrict a,
                                     const float *restrict b, size_t ldb, const float *const *rows, float *restrict c, size_t ldc, int32_t mr,
                                     int32_t nr, int32_t accumulate, const tile_epilogue *ep) {
  float acc[MR * NR];
  for (int i = 0; i < MR * NR; i++) acc[i] = 0.0f;
  for (size_t k = 0; k < kc; k++) {
    const float *bk = INDIRECT ? rows[k] : b;
    for (int r = 0; r < MRV; r++) {
      const float av = a[r];
      for (int j = 0; j < NRV; j++) acc[r * NR + j] += av * bk[j];
    }
    a += MR;
    if (!INDIRECT) b += ldb;
  }
  tile_store_scalar(acc, c, ldc, mr, nr, accumulate, ep);
}

#define RK_TILE_ISA scalar
#define RK_TILE_BODY f32_gemm_tile__scalar

#endif

/* f32_gemm_<MRV>x<NRV>__<isa> and f32_igemm_<MRV>x<NRV>__<isa>: the register tiles, one
   function each. */
#define RK_TILE_NAME_(kind, isa, m, n) kind##_##m##x##n##__##isa
#define RK_TILE_NAME(kind, isa, m, n) RK_TILE_NAME_(kind, isa, m, n)
#define RK_DEFINE_TILE_KIND(kind, indirect, m, n)                                                              \
  static void RK_TILE_NAME(kind, RK_TILE_ISA, m, n)(size_t kc, const float *a, const float *b, size_t ldb,     \
                                                     const float *const *rows, float *c, size_t ldc, int32_t mr, \
                                                     int32_t nr, int32_t accumulate, const tile_epilogue *ep) {   \
    RK_TILE_BODY(m, n, indirect, kc, a, b, ldb, rows, c, ldc, mr, nr, accumulate, ep);                         \
  }
#define RK_DEFINE_TILE(m, n) RK_DEFINE_TILE_KIND(f32_gemm, 0, m, n) RK_DEFINE_TILE_KIND(f32_igemm, 1, m, n)
#define RK_TILE_ROW(m, n, half)                                                           \
  {{RK_TILE_NAME(f32_gemm, RK_TILE_ISA, m, n), RK_TILE_NAME(f32_igemm, RK_TILE_ISA, m, n)}, \
   {RK_TILE_NAME(f32_gemm, RK_TILE_ISA, m, half), RK_TILE_NAME(f32_igemm, RK_TILE_ISA, m, half)}}

/* gemm_tiles[mr - 1][narrow][indirect]: mr rows × (narrow ? NR_HALF : NR) columns; NR_HALF
   serves the last, narrow pixel panel (a 7×7 plane is 3 panels of 16 and one of 1). */
#if MR == 6 && NR == 16
#define NR_HALF 8
RK_DEFINE_TILE(1, 16) RK_DEFINE_TILE(1, 8)
RK_DEFINE_TILE(2, 16) RK_DEFINE_TILE(2, 8)
RK_DEFINE_TILE(3, 16) RK_DEFINE_TILE(3, 8)
RK_DEFINE_TILE(4, 16) RK_DEFINE_TILE(4, 8)
RK_DEFINE_TILE(5, 16) RK_DEFINE_TILE(5, 8)
RK_DEFINE_TILE(6, 16) RK_DEFINE_TILE(6, 8)
static gemm_tile_fn const gemm_tiles[MR][2][2] = {
    RK_TILE_ROW(1, 16, 8), RK_TILE_ROW(2, 16, 8), RK_TILE_ROW(3, 16, 8),
    RK_TILE_ROW(4, 16, 8), RK_TILE_ROW(5, 16, 8), RK_TILE_ROW(6, 16, 8),
};
#elif MR == 12 && NR == 32
#define NR_HALF 16
RK_DEFINE_TILE(1, 32) RK_DEFINE_TILE(1, 16)
RK_DEFINE_TILE(2, 32) RK_DEFINE_TILE(2, 16)
RK_DEFINE_TILE(3, 32) RK_DEFINE_TILE(3, 16)
RK_DEFINE_TILE(4, 32) RK_DEFINE_TILE(4, 16)
RK_DEFINE_TILE(5, 32) RK_DEFINE_TILE(5, 16)
RK_DEFINE_TILE(6, 32) RK_DEFINE_TILE(6, 16)
RK_DEFINE_TILE(7, 32) RK_DEFINE_TILE(7, 16)
RK_DEFINE_TILE(8, 32) RK_DEFINE_TILE(8, 16)
RK_DEFINE_TILE(9, 32) RK_DEFINE_TILE(9, 16)
RK_DEFINE_TILE(10, 32) RK_DEFINE_TILE(10, 16)
RK_DEFINE_TILE(11, 32) RK_DEFINE_TILE(11, 16)
RK_DEFINE_TILE(12, 32) RK_DEFINE_TILE(12, 16)
static gemm_tile_fn const gemm_tiles[MR][2][2] = {
    RK_TILE_ROW(1, 32, 16), RK_TILE_ROW(2, 32, 16), RK_TILE_ROW(3, 32, 16), RK_TILE_ROW(4, 32, 16),
    RK_TILE_ROW(5, 32, 16), RK_TILE_ROW(6, 32, 16), RK_TILE_ROW(7, 32, 16), RK_TILE_ROW(8, 32, 16),
    RK_TILE_ROW(9, 32, 16), RK_TILE_ROW(10, 32, 16), RK_TILE_ROW(11, 32, 16), RK_TILE_ROW(12, 32, 16),
};
#elif MR == 4 && NR == 8
#define NR_HALF 4
RK_DEFINE_TILE(1, 8) RK_DEFINE_TILE(1, 4)
RK_DEFINE_TILE(2, 8) RK_DEFINE_TILE(2, 4)
RK_DEFINE_TILE(3, 8) RK_DEFINE_TILE(3, 4)
RK_DEFINE_TILE(4, 8) RK_DEFINE_TILE(4, 4)
static gemm_tile_fn const gemm_tiles[MR][2][2] = {
    RK_TILE_ROW(1, 8, 4), RK_TILE_ROW(2, 8, 4), RK_TILE_ROW(3, 8, 4), RK_TILE_ROW(4, 8, 4),
};
#else
#error "no micro-kernel table for this MR × NR"
#endif

RK_INLINE void gemm_tile(int32_t mr, int32_t nr, size_t kc, const float *a, const float *b, size_t ldb,
                         const float *const *rows, float *c, size_t ldc, int32_t accumulate, const tile_epilogue *ep) {
  gemm_tiles[mr - 1][nr <= NR_HALF][rows != 0](kc, a, b, ldb, rows, c, ldc, mr, nr, accumulate, ep);
}

/* ---------------------------------------------------------------------------------------
 * Convolution.
 * ------------------------------------------------------------------------------------- */

/* What every thread derives from the shape, the same way. */
typedef struct {
  int32_t group_in, group_out;  /* C/groups, O/groups */
  int32_t taps;                 /* kh·kw */
  int32_t k;                    /* C/groups·kh·kw: GEMM depth */
  int32_t row_panels;           /* ceil(O/groups / MR) */
  int32_t in_plane, out_plane;  /* H·W, OH·OW */
  int32_t pixel_panels;         /* ceil(OH·OW / NR) */
  int32_t block_channels;       /* input channels per K block: KC rows rounded to whole channels */
  int32_t direct;               /* 1×1, stride 1, no padding: B is the input planes themselves */
  int32_t indirect;             /* unit column stride, wide rows: B rows in one input row are read in place */
} conv_plan;

/* Column stride 2 (the stem, the strided 3×3s), undilated, kernel at least 3 wide: a panel of
   NR pixels in one output row reads, for tap kx, inputs ix = 2·ox0 − pad + kx + 2·l: the
   taps of one parity read the same every-other-column sequence, shifted by kx/2. So such a
   panel gathers each (channel, kernel row) once per parity into a short "phase row"
   (NR + (kw − 1)/2 values, zeros for padding) and points the indirect micro-kernel at it,
   kx/2 in, instead of gathering every tap's row (kw/2 times less strided copying). The phase
   rows of a panel fit in the space of its packed rows (2·(NR + (kw−1)/2) ≤ kw·NR). */
static int32_t phase_rows_apply(const rk_conv2d_shape *s) {
  return s->stride_w == 2 && s->dilation_w == 1 && s->kernel_w >= 3;
}

static conv_plan plan_conv(const rk_conv2d_shape *s) {
  conv_plan p;
  p.group_in = s->in_channels / s->groups;
  p.group_out = s->out_channels / s->groups;
  p.taps = s->kernel_h * s->kernel_w;
  p.k = p.group_in * p.taps;
  p.row_panels = ceil_div(p.group_out, MR);
  p.in_plane = s->in_h * s->in_w;
  p.out_plane = s->out_h * s->out_w;
  p.pixel_panels = ceil_div(p.out_plane, NR);
  /* Equal K blocks of whole channels, none above KC rows unless one channel's taps are. */
  const int32_t per_block = max_i32(1, KC / p.taps);
  const int32_t blocks = ceil_div(p.group_in, per_block);
  p.block_channels = ceil_div(p.group_in, blocks);
  p.direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
             s->pad_w == 0;
  /* Only rows at least a panel wide have B rows to read in place; narrower (7×7) planes
     would pay the pointers for nothing. */
  p.indirect = !p.direct && (s->stride_w == 1 || phase_rows_apply(s)) && s->out_w >= NR;
  return p;
}

/* ---------------------------------------------------------------------------------------
 * Winograd F(2×2, 3×3) for 3×3 stride-1 undilated ungrouped convolutions (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2015): each 2×2 block of outputs
 * ("tile") is computed from its 4×4 input window d as
 *   y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
 * so the 36 multiply-adds per tile, input and output channel of the direct convolution
 * become 16, done as 16 independent GEMMs (one per element ξ of the 4×4 transformed tile):
 *   M_ξ (O × tiles) = U_ξ (O × C) · V_ξ (C × tiles)
 * with U = G g Gᵀ packed once (conv2d_pack) and V = Bᵀ d B built per block of tiles.
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 -1 -1]
 * The transforms only add and subtract (G halves): F(2, 3) loses no more than a few ulps
 * against the direct sum. A NaN input reaches exactly the outputs whose windows hold it (the
 * transforms add only nonzero terms); an infinite one can give NaN (∞ − ∞) where the direct
 * sum gives ±∞. No barrier between the three steps: a thread transforms the input
 * of its own block of tiles (all channels), runs the 16 GEMMs with the same packed
 * micro-kernel as the direct convolution, and transforms back into y with the epilogue.
 * ------------------------------------------------------------------------------------- */

#define WINO_XI 16         /* elements of a transformed 4×4 tile */
#define WINO_BLOCK_PANELS 4 /* NR-tile panels per block: V_ξ (C × 4·NR) stays in L2 */

typedef struct {
  int32_t tiles_h, tiles_w, tiles; /* 2×2 output tiles of one image */
  int32_t panels;                  /* ceil(tiles / NR) */
  int32_t block_panels;            /* panels per block: min(panels, WINO_BLOCK_PANELS) */
  int32_t row_panels;              /* ceil(O / MR) */
  int32_t row_len;                 /* input columns one row of tiles reads: 2·tiles_w + 2 */
} wino_plan;

/* Winograd where it pays: the transforms cost about as much as 2-4 output channels of GEMM
   per tile, so both channel counts must be well above that; and U is 16/9 the size of the
   weight, streamed once per block of one image's tiles, so planes of few tiles wait on memory
   for it. Measured at 512 channels, 2 threads: 7×7 (16 tiles) 1.5× faster than direct (with U
   packed K-block-major, one stream per block), 5×5 (9 tiles) 1.2× and 4×4 (4) 1.6× slower. */
#define WINO_MIN_TILES 16
static int32_t use_winograd(const rk_conv2d_shape *s) {
  return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dilation_h == 1 &&
         s->dilation_w == 1 && s->groups == 1 && s->in_channels >= 16 && s->out_channels >= 16 &&
         ceil_div(s->out_h, 2) * ceil_div(s->out_w, 2) >= WINO_MIN_TILES;
}

static wino_plan plan_wino(const rk_conv2d_shape *s) {
  wino_plan w;
  w.tiles_h = ceil_div(s->out_h, 2);
  w.tiles_w = ceil_div(s->out_w, 2);
  w.tiles = w.tiles_h * w.tiles_w;
  w.panels = ceil_div(w.tiles, NR);
  w.block_panels = min_i32(w.panels, WINO_BLOCK_PANELS);
  w.row_panels = ceil_div(s->out_channels, MR);
  w.row_len = 2 * w.tiles_w + 2;
  return w;
}

static size_t round_line(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* One thread's scratch: V [ξ][panel][c][NR] of a block, M [ξ][o][block lane] for all O, the
   four rows of the vertical pass and a zero row. */
static size_t wino_v_floats(const rk_conv2d_shape *s, const wino_plan *w) {
  return round_line((size_t)WINO_XI * w->block_panels * NR * s->in_channels);
}
static size_t wino_m_floats(const wino_plan *w) {
  return round_line((size_t)WINO_XI * w->row_panels * MR * w->block_panels * NR);
}
static size_t wino_scratch_per_thread(const rk_conv2d_shape *s, const wino_plan *w) {
  return wino_v_floats(s, w) + wino_m_floats(w) + 5 * round_line((size_t)w->row_len);
}

/* U_ξ = G g Gᵀ of each (o, c), per ξ in K blocks of KC channels, each block's MR-row panels
   one after another: packed[ξ][block][panel][c - c0][r] (see conv2d_pack). */
static void wino_pack(const rk_conv2d_shape *s, const float *weight, float *packed) {
  const wino_plan w = plan_wino(s);
  const int32_t C = s->in_channels, O = s->out_channels;
  const size_t xi_stride = (size_t)w.row_panels * C * MR;
  for (int32_t o = 0; o < w.row_panels * MR; o++) {
    for (int32_t c = 0; c < C; c++) {
      float u[16];
      if (o < O) {
        const float *g = weight + ((size_t)o * C + c) * 9;
        float t[4][3]; /* G g */
        for (int j = 0; j < 3; j++) {
          t[0][j] = g[j];
          t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
          t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
          t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) { /* (G g) Gᵀ */
          u[i * 4 + 0] = t[i][0];
          u[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
          u[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
          u[i * 4 + 3] = t[i][2];
        }
      } else {
        for (int i = 0; i < 16; i++) u[i] = 0.0f;
      }
      const int32_t c0 = c / KC * KC, kc = min_i32(KC, C - c0);
      const size_t at = (size_t)c0 * w.row_panels * MR + ((size_t)(o / MR) * kc + (c - c0)) * MR + o % MR;
      for (int xi = 0; xi < WINO_XI; xi++) packed[xi * xi_stride + at] = u[xi];
    }
  }
}

typedef struct {
  const rk_conv2d_shape *s;
  const wino_plan *w;
  const float *x, *packed, *bias, *residual;
  int32_t relu;
  float *y;
  float *v, *m, *rows; /* this thread's scratch */
} wino_args;

/* V of tiles [t0, t0 + count) of image n, all channels, as B panels: V[ξ][panel][c][NR],
   lanes past `count` zero. Per channel and row of tiles: the vertical pass Bᵀ over the 4
   input rows (whole rows, vectorisable), then the horizontal pass over each tile's 4 columns
   into the 16 ξ streams. */
static void wino_input(const wino_args *a, int32_t n, int32_t t0, int32_t count, int32_t panels) {
  const rk_conv2d_shape *s = a->s;
  const wino_plan *w = a->w;
  const int32_t C = s->in_channels, H = s->in_h, W = s->in_w;
  const size_t xi_stride = (size_t)panels * C * NR;
  float *r[4], *zero = a->rows + 4 * round_line((size_t)w->row_len);
  for (int i = 0; i < 4; i++) r[i] = a->rows + i * round_line((size_t)w->row_len);
  /* Lanes past the last tile stay zero through the GEMM (their M is never read). */
  const int32_t lanes = panels * NR;
  if (count < lanes) {
    for (int32_t xi = 0; xi < WINO_XI; xi++)
      for (int32_t c = 0; c < C; c++) {
        float *d = a->v + xi * xi_stride + ((size_t)(count / NR) * C + c) * NR;
        for (int32_t l = count % NR; l < NR; l++) d[l] = 0.0f;
        for (int32_t p = count / NR + 1; p < panels; p++)
          for (int32_t l = 0; l < NR; l++) a->v[xi * xi_stride + ((size_t)p * C + c) * NR + l] = 0.0f;
      }
  }
  for (int32_t c = 0; c < C; c++) {
    const float *xc = a->x + ((size_t)n * C + c) * H * W;
    for (int32_t t = t0; t < t0 + count;) {
      const int32_t ty = t / w->tiles_w, tx0 = t % w->tiles_w;
      const int32_t tx1 = min_i32(w->tiles_w, tx0 + (t0 + count - t));
      /* Input columns ix0 .. ix0 + len of this run of tiles; in-bounds part [lo, hi). */
      const int32_t ix0 = 2 * tx0 - s->pad_w, len = 2 * (tx1 - tx0) + 2;
      const int32_t lo = min_i32(len, max_i32(0, -ix0)), hi = max_i32(lo, min_i32(len, W - ix0));
      const float *in[4];
      for (int k = 0; k < 4; k++) {
        const int32_t iy = 2 * ty - s->pad_h + k;
        in[k] = iy >= 0 && iy < H ? xc + (size_t)iy * W + ix0 : zero - lo; /* zero[0 .. len) */
      }
      for (int32_t j = 0; j < lo; j++) r[0][j] = r[1][j] = r[2][j] = r[3][j] = 0.0f;
      for (int32_t j = hi; j < len; j++) r[0][j] = r[1][j] = r[2][j] = r[3][j] = 0.0f;
      {
        const float *restrict i0 = in[0], *restrict i1 = in[1], *restrict i2 = in[2], *restrict i3 = in[3];
        float *restrict r0 = r[0], *restrict r1 = r[1], *restrict r2 = r[2], *restrict r3 = r[3];
        for (int32_t j = lo; j < hi; j++) {
          const float d0 = i0[j], d1 = i1[j], d2 = i2[j], d3 = i3[j];
          r0[j] = d0 - d2;
          r1[j] = d1 + d2;
          r2[j] = d2 - d1;
          r3[j] = d1 - d3;
        }
      }
      /* Horizontal pass, one run of lanes per panel the tiles cross. */
      for (int32_t q0 = 0; q0 < tx1 - tx0;) {
        const int32_t lane0 = t + q0 - t0;
        const int32_t run = min_i32(tx1 - tx0 - q0, NR - lane0 % NR);
        float *base = a->v + ((size_t)(lane0 / NR) * C + c) * NR + lane0 % NR;
        for (int i = 0; i < 4; i++) {
          const float *restrict src = r[i] + 2 * q0;
          float *restrict d0 = base + (size_t)(i * 4 + 0) * xi_stride;
          float *restrict d1 = base + (size_t)(i * 4 + 1) * xi_stride;
          float *restrict d2 = base + (size_t)(i * 4 + 2) * xi_stride;
          float *restrict d3 = base + (size_t)(i * 4 + 3) * xi_stride;
          for (int32_t q = 0; q < run; q++) {
            const float e0 = src[2 * q], e1 = src[2 * q + 1], e2 = src[2 * q + 2], e3 = src[2 * q + 3];
            d0[q] = e0 - e2;
            d1[q] = e1 + e2;
            d2[q] = e2 - e1;
            d3[q] = e1 - e3;
          }
        }
        q0 += run;
      }
      t += tx1 - tx0;
    }
  }
}

/* M_ξ[o][lane] = Σ_c U_ξ[o][c] · V_ξ[c][lane] for rows [m0, m1) (m0 a multiple of MR) and
   the block's lanes, BLIS order per ξ: K block → row block (MC, A in L2) → pixel panel (B in
   L1) → row panel. */
static void wino_gemm(const wino_args *a, int32_t m0, int32_t m1, int32_t count, int32_t panels) {
  const rk_conv2d_shape *s = a->s;
  const wino_plan *w = a->w;
  const int32_t C = s->in_channels;
  const size_t ldm = (size_t)panels * NR;
  const size_t u_stride = (size_t)w->row_panels * C * MR, v_stride = (size_t)panels * C * NR;
  const size_t m_stride = (size_t)w->row_panels * MR * ldm;
  for (int32_t xi = 0; xi < WINO_XI; xi++) {
    const float *u = a->packed + xi * u_stride;
    const float *v = a->v + xi * v_stride;
    float *m = a->m + xi * m_stride;
    for (int32_t k0 = 0; k0 < C; k0 += KC) {
      const int32_t kc = min_i32(KC, C - k0);
      for (int32_t mc = m0; mc < m1; mc += MC) {
        const int32_t mc_end = min_i32(m1, mc + MC);
        for (int32_t j = 0; j * NR < count; j++) {
          const int32_t nr = min_i32(NR, count - j * NR);
          const float *b = v + ((size_t)j * C + k0) * NR;
          for (int32_t i = mc; i < mc_end; i += MR) {
            gemm_tile(min_i32(MR, mc_end - i), nr, (size_t)kc, u + ((size_t)k0 * w->row_panels + (size_t)(i / MR) * kc) * MR, b, NR, 0,
                      m + (size_t)(i - m0) * ldm + (size_t)j * NR, ldm, k0 > 0, 0);
          }
        }
      }
    }
  }
}

/* y[j] = relu?(v[j] + bias + res[j]) for j < n: the epilogue of one output row segment. */
static void wino_store(float *restrict y, const float *restrict v, const float *restrict res, int32_t n, float bias,
                       int32_t relu) {
  if (res) {
    if (relu) {
      for (int32_t j = 0; j < n; j++) {
        const float t = v[j] + bias + res[j];
        y[j] = t < 0.0f ? 0.0f : t;
      }
    } else {
      for (int32_t j = 0; j < n; j++) y[j] = v[j] + bias + res[j];
    }
  } else if (relu) {
    for (int32_t j = 0; j < n; j++) {
      const float t = v[j] + bias;
      y[j] = t < 0.0f ? 0.0f : t;
    }
  } else {
    for (int32_t j = 0; j < n; j++) y[j] = v[j] + bias;
  }
}

/* y = Aᵀ M A of tiles [t0, t0 + count) of image n, rows [m0, m1), with the epilogue. Per
   output channel and run of tiles in one tile row: the two output rows are built in the
   row buffers (vectorisable over tiles), then stored with the epilogue. */
static void wino_output(const wino_args *a, int32_t n, int32_t t0, int32_t count, int32_t panels, int32_t m0,
                        int32_t m1) {
  const rk_conv2d_shape *s = a->s;
  const wino_plan *w = a->w;
  const int32_t OH = s->out_h, OW = s->out_w;
  const size_t ldm = (size_t)panels * NR;
  const size_t ms = (size_t)w->row_panels * MR * ldm;
  float *restrict row0 = a->rows, *restrict row1 = a->rows + round_line((size_t)w->row_len);
  for (int32_t o = m0; o < m1; o++) {
    const size_t plane = ((size_t)n * s->out_channels + o) * OH * OW;
    const float *ro = a->residual ? a->residual + plane : 0;
    const float bias = a->bias ? a->bias[o] : 0.0f;
    const float *mo = a->m + (size_t)(o - m0) * ldm;
    for (int32_t t = t0; t < t0 + count;) {
      const int32_t ty = t / w->tiles_w, tx0 = t % w->tiles_w;
      const int32_t tx1 = min_i32(w->tiles_w, tx0 + (t0 + count - t));
      const int32_t run = tx1 - tx0;
      const float *restrict m = mo + (t - t0);
      for (int32_t q = 0; q < run; q++) {
        float u0[4], u1[4]; /* Aᵀ M */
        for (int l = 0; l < 4; l++) {
          const float a0 = m[l * ms + q], a1 = m[(4 + l) * ms + q], a2 = m[(8 + l) * ms + q], a3 = m[(12 + l) * ms + q];
          u0[l] = a0 + a1 + a2;
          u1[l] = a1 - a2 - a3;
        }
        row0[2 * q] = u0[0] + u0[1] + u0[2];
        row0[2 * q + 1] = u0[1] - u0[2] - u0[3];
        row1[2 * q] = u1[0] + u1[1] + u1[2];
        row1[2 * q + 1] = u1[1] - u1[2] - u1[3];
      }
      const int32_t oy = 2 * ty, ox = 2 * tx0, width = min_i32(2 * run, OW - ox);
      const size_t at = (size_t)oy * OW + ox;
      wino_store(a->y + plane + at, row0, ro ? ro + at : 0, width, bias, a->relu);
      if (oy + 1 < OH) wino_store(a->y + plane + at + OW, row1, ro ? ro + at + OW : 0, width, bias, a->relu);
      t += run;
    }
  }
}

/* Tiles [t0, t1) of image n, output rows [m0, m1), in blocks of block_panels panels. */
static void wino_region(const wino_args *a, int32_t n, int32_t t0, int32_t t1, int32_t m0, int32_t m1) {
  const int32_t block = a->w->block_panels * NR;
  for (int32_t b = t0; b < t1; b += block) {
    const int32_t count = min_i32(block, t1 - b);
    const int32_t panels = ceil_div(count, NR);
    wino_input(a, n, b, count, panels);
    wino_gemm(a, m0, m1, count, panels);
    wino_output(a, n, b, count, panels, m0, m1);
  }
}

/* Whether output channels divide among nthreads slices better than `units` tile panels do. */
static int32_t wino_split_over_channels(const wino_plan *w, int64_t units, int32_t nthreads) {
  const int64_t transform = 8; /* input transform per tile ≈ GEMM of 8 output channels */
  const int64_t by_tiles = (units + nthreads - 1) / nthreads * ((int64_t)w->row_panels * MR + transform);
  const int64_t by_channels = units * (((int64_t)w->row_panels + nthreads - 1) / nthreads * MR + transform);
  return nthreads > 1 && w->row_panels >= nthreads && by_channels < by_tiles;
}

/* Threads split whole NR-tile panels of all images, or, when there are too few panels to
   share evenly (7×7 and 14×14 planes at batch 1), output channels in whole MR-row panels,
   each thread transforming the (small) input itself. */
static void wino_conv(const rk_conv2d_shape *s, const float *x, const float *packed, const float *bias,
                      const float *residual, int32_t relu, float *y, float *scratch, int32_t by_channels,
                      int32_t tid, int32_t nthreads) {
  const wino_plan w = plan_wino(s);
  wino_args a;
  a.s = s, a.w = &w, a.x = x, a.packed = packed, a.bias = bias, a.residual = residual, a.relu = relu, a.y = y;
  float *mine = scratch;
  a.v = mine;
  a.m = mine + wino_v_floats(s, &w);
  a.rows = a.m + wino_m_floats(&w);
  float *zero = a.rows + 4 * round_line((size_t)w.row_len);
  for (int32_t j = 0; j < w.row_len; j++) zero[j] = 0.0f;

  int32_t m0, m1;
  if (by_channels) {
    if (row_slice(s->out_channels, tid, nthreads, &m0, &m1))
      for (int32_t n = 0; n < s->batch; n++) wino_region(&a, n, 0, w.tiles, m0, m1);
    return;
  }
  const int64_t units = (int64_t)s->batch * w.panels;
  int64_t u = units * tid / nthreads;
  const int64_t u1 = units * (tid + 1) / nthreads;
  while (u < u1) {
    const int32_t n = (int32_t)(u / w.panels);
    const int64_t end = u1 < (int64_t)(n + 1) * w.panels ? u1 : (int64_t)(n + 1) * w.panels;
    const int32_t p0 = (int32_t)(u - (int64_t)n * w.panels), p1 = (int32_t)(end - (int64_t)n * w.panels);
    wino_region(&a, n, p0 * NR, min_i32(w.tiles, p1 * NR), 0, s->out_channels);
    u = end;
  }
}

int32_t RK_API(conv2d_packing)(const rk_conv2d_shape *s) {
  return use_winograd(s) ? RK_PACKING_WINOGRAD : RK_PACKING_GEMM;
}

size_t RK_API(conv2d_packed_floats)(const rk_conv2d_shape *s) {
  if (use_winograd(s)) {
    const wino_plan w = plan_wino(s);
    return (size_t)WINO_XI * w.row_panels * MR * s->in_channels;
  }
  const conv_plan p = plan_conv(s);
  return (size_t)s->groups * p.row_panels * MR * p.k;
}

/* Per group, in the K blocks conv_region walks (k0 = c0·taps, kc rows), each block's MR-row
   panels one after another:
     packed[g][block][panel][k - k0][r] = w[g·O/groups + panel·MR + r][k], zero past the
   group's last row.
   So the A block a row block of the GEMM reads (MC rows × kc) is one contiguous stretch of
   memory: weights that come from DRAM arrive as one stream the hardware prefetcher follows,
   not as MC/MR short pieces a whole panel (k·MR floats) apart. */
void RK_API(conv2d_pack)(const rk_conv2d_shape *s, const float *weight, float *packed) {
  if (use_winograd(s)) {
    wino_pack(s, weight, packed);
    return;
  }
  const conv_plan p = plan_conv(s);
  for (int32_t g = 0; g < s->groups; g++) {
    for (int32_t c0 = 0; c0 < p.group_in; c0 += p.block_channels) {
      const int32_t k0 = c0 * p.taps, kc = (min_i32(p.group_in, c0 + p.block_channels) - c0) * p.taps;
      float *block = packed + ((size_t)g * p.k + k0) * p.row_panels * MR;
      for (int32_t panel = 0; panel < p.row_panels; panel++) {
        float *dst = block + (size_t)panel * kc * MR;
        for (int32_t k = 0; k < kc; k++) {
          for (int32_t r = 0; r < MR; r++) {
            const int32_t o = panel * MR + r;
            dst[(size_t)k * MR + r] = o < p.group_out ? weight[((size_t)g * p.group_out + o) * p.k + k0 + k] : 0.0f;
          }
        }
      }
    }
  }
}


/* A run of consecutive lanes of one B panel row: `count` values from src, src + stride, ...
   of the input plane, or zeros (src < 0: padding, or lanes past the last pixel). */
typedef struct {
  int32_t lane, count, src;
} pack_run;

/* The pixels of one panel that lie in one output row: lanes [lane, lane + count) are output
   pixels (oy, ox .. ox + count - 1). */
typedef struct {
  int32_t lane, count, oy, ox;
} panel_segment;

/* Splits the panel of output pixels [p, p + pixels) into its output rows; the lanes past
   `pixels` (up to NR) get oy = -1. Returns the number of segments (at most NR). */
static int32_t panel_segments(const rk_conv2d_shape *s, int32_t p, int32_t pixels, panel_segment *segs) {
  int32_t n = 0, lane = 0;
  int32_t oy = p / s->out_w, ox = p % s->out_w;
  while (lane < pixels) {
    const int32_t count = min_i32(pixels - lane, s->out_w - ox);
    segs[n].lane = lane, segs[n].count = count, segs[n].oy = oy, segs[n].ox = ox;
    n++;
    lane += count, ox = 0, oy++;
  }
  if (lane < NR) segs[n].lane = lane, segs[n].count = NR - lane, segs[n].oy = -1, segs[n].ox = 0, n++;
  return n;
}

/* Appends lanes [lane, lane + count) reading src, src + stride, ... (src < 0: zeros),
   extending the last run when the lanes continue it: the same zeros, or the next input
   at the stride (the data really is there, whichever output row it belongs to). */
static inline int32_t push_run(pack_run *runs, int32_t n, int32_t lane, int32_t count, int32_t src, int32_t stride) {
  if (count <= 0) return n;
  if (n > 0) {
    pack_run *last = &runs[n - 1];
    if ((src < 0 && last->src < 0) || (src >= 0 && last->src >= 0 && src == last->src + last->count * stride)) {
      last->count += count;
      return n;
    }
  }
  runs[n].lane = lane, runs[n].count = count, runs[n].src = src;
  return n + 1;
}

/* The runs of panel row (ky, kx): per output-row segment, padding rows are zeros and the
   columns splits into zeros | inputs | zeros by arithmetic, so this costs O(segments), not
   O(NR). At most 3 runs per segment. */
static int32_t im2col_runs(const rk_conv2d_shape *s, const panel_segment *segs, int32_t nsegs, int32_t ky,
                           int32_t kx, pack_run *runs) {
  int32_t n = 0;
  const int32_t sw = s->stride_w;
  for (int32_t i = 0; i < nsegs; i++) {
    const panel_segment *g = &segs[i];
    const int32_t iy = g->oy * s->stride_h - s->pad_h + ky * s->dilation_h;
    if (g->oy < 0 || iy < 0 || iy >= s->in_h) {
      n = push_run(runs, n, g->lane, g->count, -1, sw);
      continue;
    }
    /* Lane l of the segment reads ix = ix0 + l·sw; valid for l in [lo, hi). */
    const int32_t ix0 = g->ox * sw - s->pad_w + kx * s->dilation_w;
    const int32_t lo = min_i32(g->count, ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw);
    const int32_t hi = max_i32(lo, min_i32(g->count, ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / sw + 1));
    n = push_run(runs, n, g->lane, lo, -1, sw);
    n = push_run(runs, n, g->lane + lo, hi - lo, iy * s->in_w + ix0 + lo * sw, sw);
    n = push_run(runs, n, g->lane + hi, g->count - hi, -1, sw);
  }
  return n;
}

/* d[0 .. count) = s[0], s[stride], ...; strides 1 and 2 (ResNet's) get loops the compiler
   vectorises. */
static inline void copy_strided(float *restrict d, const float *restrict s, int32_t count, int32_t stride) {
  if (stride == 1) {
    for (int32_t i = 0; i < count; i++) d[i] = s[i];
  } else if (stride == 2) {
    for (int32_t i = 0; i < count; i++) d[i] = s[2 * i];
  } else {
    for (int32_t i = 0; i < count; i++) d[i] = s[i * stride];
  }
}

/* Where the runs of (panel j, tap) are in the run pool of a pixel chunk. */
typedef struct {
  int32_t start, count;
} run_span;

/* The most runs one (panel, tap) can have: 3 per segment. */
#define MAX_RUNS (3 * (NR + 1))

/* What an all-padding B row of the indirect micro-kernel points at. */
static const float zero_row[NR] __attribute__((aligned(64)));

/* Finds the runs of every (panel, tap) of output pixels [p0, p0 + pixels) once per pixel
   chunk; every K block and every group of the chunk replays them (they depend on neither). */
static void plan_runs(const rk_conv2d_shape *s, const conv_plan *p, int32_t p0, int32_t pixels, run_span *spans,
                      pack_run *pool) {
  panel_segment segs[NR + 1];
  int32_t used = 0;
  for (int32_t j = 0; j * NR < pixels; j++) {
    const int32_t nsegs = panel_segments(s, p0 + j * NR, min_i32(NR, pixels - j * NR), segs);
    for (int32_t tap = 0; tap < p->taps; tap++) {
      const int32_t n = im2col_runs(s, segs, nsegs, tap / s->kernel_w, tap % s->kernel_w, pool + used);
      spans[j * p->taps + tap].start = used;
      spans[j * p->taps + tap].count = n;
      used += n;
    }
  }
}

/* Packs x̂ rows of channels [c0, c1) (all taps) for the `pixels` output pixels whose runs
   plan_runs found, for one image and group: panel j (NR pixels) at dst + j·rows·NR, layout
   [row][NR], rows = (c1 - c0)·taps, row (c - c0)·taps + ky·kw + kx. xg is the group's
   first input plane.
   With `rows_out` (stride_w 1), a row that is NR consecutive inputs (or all padding) is not
   copied: rows_out[j·rows + row] points at it in x (or at zero_row), and at its packed copy
   otherwise; the indirect micro-kernel reads B through these pointers. */
/* Phase rows (see phase_rows_apply) of panel j, whose NR pixels start at (oy, ox0) of one
   output row: for channels [c0, c1) and kernel rows ky, phase q = kx & 1 at
   area + (((c − c0)·kh + ky)·2 + q)·len, and rows_out[(c − c0)·taps + ky·kw + kx] pointing
   kx/2 into it; kernel rows in the vertical padding point at zero_row. */
static void pack_phase_rows(const rk_conv2d_shape *s, const conv_plan *p, const float *xg, int32_t c0, int32_t c1,
                            int32_t oy, int32_t ox0, float *area, const float **rows_out) {
  const int32_t kh = s->kernel_h, kw = s->kernel_w;
  const int32_t len = NR + (kw - 1) / 2;
  for (int32_t c = c0; c < c1; c++) {
    const float *xc = xg + (size_t)c * p->in_plane;
    for (int32_t ky = 0; ky < kh; ky++) {
      const float **r = rows_out + (size_t)(c - c0) * p->taps + (size_t)ky * kw;
      const int32_t iy = oy * s->stride_h - s->pad_h + ky * s->dilation_h;
      if (iy < 0 || iy >= s->in_h) {
        for (int32_t kx = 0; kx < kw; kx++) r[kx] = zero_row;
        continue;
      }
      const float *row = xc + (size_t)iy * s->in_w;
      for (int32_t q = 0; q < 2; q++) {
        float *d = area + ((size_t)((c - c0) * kh + ky) * 2 + q) * len;
        const int32_t ix0 = 2 * ox0 - s->pad_w + q; /* input column of d[0]; d[m] is ix0 + 2m */
        const int32_t lo = min_i32(len, ix0 >= 0 ? 0 : (-ix0 + 1) / 2);
        const int32_t hi = max_i32(lo, min_i32(len, ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / 2 + 1));
        for (int32_t m = 0; m < lo; m++) d[m] = 0.0f;
        copy_strided(d + lo, row + ix0 + 2 * lo, hi - lo, 2);
        for (int32_t m = hi; m < len; m++) d[m] = 0.0f;
        for (int32_t kx = q; kx < kw; kx += 2) r[kx] = d + kx / 2;
      }
    }
  }
}

static void pack_im2col(const rk_conv2d_shape *s, const conv_plan *p, const float *xg, int32_t p0, int32_t pixels,
                        int32_t c0, int32_t c1, const run_span *spans, const pack_run *pool, float *dst,
                        const float **rows_out) {
  const int32_t rows = (c1 - c0) * p->taps;
  for (int32_t j = 0; j * NR < pixels; j++) {
    float *panel = dst + (size_t)j * rows * NR;
    const float **panel_rows = rows_out ? rows_out + (size_t)j * rows : 0;
    if (panel_rows && phase_rows_apply(s)) {
      /* Phase rows for a whole panel in one output row; otherwise the copies below. */
      const int32_t q = p0 + j * NR, oy = q / s->out_w, ox0 = q % s->out_w;
      if (ox0 + NR <= s->out_w) {
        pack_phase_rows(s, p, xg, c0, c1, oy, ox0, panel, panel_rows);
        continue;
      }
    }
    for (int32_t tap = 0; tap < p->taps; tap++) {
      const pack_run *runs = pool + spans[j * p->taps + tap].start;
      const int32_t nruns = spans[j * p->taps + tap].count;
      const int32_t contiguous = nruns == 1 && runs[0].src >= 0 && s->stride_w == 1;
      const int32_t all_zero = nruns == 1 && runs[0].src < 0;
      for (int32_t c = c0; c < c1; c++) {
        const size_t row = (size_t)(c - c0) * p->taps + tap;
        float *d = panel + row * NR;
        const float *xc = xg + (size_t)c * p->in_plane;
        if (panel_rows) {
          if (contiguous || all_zero) {
            panel_rows[row] = contiguous ? xc + runs[0].src : zero_row;
            continue;
          }
          panel_rows[row] = d;
        }
        if (contiguous) {
          __builtin_memcpy(d, xc + runs[0].src, NR * sizeof(float));
          continue;
        }
        for (int32_t r = 0; r < nruns; r++) {
          float *dr = d + runs[r].lane;
          if (runs[r].src < 0) {
            for (int32_t i = 0; i < runs[r].count; i++) dr[i] = 0.0f;
          } else {
            /* The next panel (same output row) reads on from where this run ends: ask for
               those lines now; packing is otherwise a series of cache misses on input rows
               too scattered for the hardware prefetcher. */
            const float *src = xc + runs[r].src;
            const float *next = src + (size_t)runs[r].count * s->stride_w;
            __builtin_prefetch(next + NR * s->stride_w);
            __builtin_prefetch(next + 2 * NR * s->stride_w - 1);
            copy_strided(dr, src, runs[r].count, s->stride_w);
          }
        }
      }
    }
  }
}

/* One thread's scratch, in this order: its B block (block_channels·taps rows × NC pixels,
   packed), a pointer per row and panel for the indirect micro-kernel, and the runs of the
   pixel chunk (spans, then the pool). */
static size_t scratch_rows_offset(const conv_plan *p) { return (size_t)p->block_channels * p->taps * NC; }
static size_t scratch_spans_offset(const conv_plan *p) {
  const size_t pointers = (size_t)p->block_channels * p->taps * (NC / NR);
  return scratch_rows_offset(p) + pointers * ((sizeof(const float *) + sizeof(float) - 1) / sizeof(float));
}
static size_t scratch_pool_offset(const conv_plan *p) {
  return scratch_spans_offset(p) + (size_t)(NC / NR) * p->taps * (sizeof(run_span) / sizeof(float));
}
static size_t scratch_per_thread(const conv_plan *p) {
  const size_t floats = scratch_pool_offset(p) + (size_t)(NC / NR) * p->taps * MAX_RUNS * (sizeof(pack_run) / sizeof(float));
  return (floats + 15) & ~(size_t)15; /* whole cache lines, so threads never share one */
}


size_t RK_API(conv2d_scratch_floats)(const rk_conv2d_shape *s) {
  if (use_winograd(s)) {
    const wino_plan w = plan_wino(s);
    return wino_scratch_per_thread(s, &w);
  }
  const conv_plan p = plan_conv(s);
  return scratch_per_thread(&p);
}

/* Packs B of a 1×1 stride-1 convolution: rows k0 .. k0 + rows of the input planes (row
   stride ldb = H·W), pixels [0, pixels) from b, into NR-column panels [panel][row][NR],
   zero-padded. Plain copies, no index arithmetic; the copy keeps the micro-kernel's B panel
   contiguous (rows of a 56×56 plane are 12544 bytes apart, so 256 of them fall in 16 of
   L1's 64 sets, and a 512-pixel plane's in 2) and never reads past the input. */
static void pack_planes(const float *b, size_t ldb, int32_t rows, int32_t pixels, float *dst) {
  const size_t panel_step = (size_t)rows * NR;
  for (int32_t k = 0; k < rows; k++) {
    /* One input row at a time, front to back: a single stream the prefetcher follows. */
    const float *src = b + (size_t)k * ldb;
    float *d = dst + (size_t)k * NR;
    int32_t j = 0;
    for (; (j + 1) * NR <= pixels; j++) __builtin_memcpy(d + (size_t)j * panel_step, src + (size_t)j * NR, NR * sizeof(float));
    if (j * NR < pixels) {
      const int32_t n = pixels - j * NR;
      for (int32_t i = 0; i < NR; i++) d[(size_t)j * panel_step + i] = i < n ? src[(size_t)j * NR + i] : 0.0f;
    }
  }
}

typedef struct {
  const rk_conv2d_shape *s;
  const conv_plan *p;
  const float *x, *packed, *bias, *residual;
  int32_t relu;
  float *y;
  float *scratch; /* this thread's */
} conv_args;

/* y rows [m0, m1) × pixels [p0, p1) of groups [g0, g1) of image n; m0 is a multiple of MR.
   Loop order (BLIS): pixel chunk (NC) → group → K block (whole channels, ≤ KC rows, B packed
   or pointed at) → row block (MC, A in L2) → pixel panel (NR, B in L1) → row panel (MR). */
static void conv_region(const conv_args *t, int32_t n, int32_t g0, int32_t g1, int32_t m0, int32_t m1, int32_t p0,
                        int32_t p1) {
  const rk_conv2d_shape *s = t->s;
  const conv_plan *p = t->p;
  const size_t ldc = (size_t)p->out_plane;
  const float **rows = p->indirect ? (const float **)(t->scratch + scratch_rows_offset(p)) : 0;
  run_span *spans = (run_span *)(t->scratch + scratch_spans_offset(p));
  pack_run *pool = (pack_run *)(t->scratch + scratch_pool_offset(p));

  const int32_t chunk = ceil_div(ceil_div(p1 - p0, ceil_div(p1 - p0, NC)), NR) * NR;
  for (int32_t pc = p0; pc < p1; pc += chunk) {
    const int32_t nc = min_i32(chunk, p1 - pc);
    if (!p->direct) plan_runs(s, p, pc, nc, spans, pool);
    for (int32_t g = g0; g < g1; g++) {
      const float *xg = t->x + ((size_t)n * s->in_channels + (size_t)g * p->group_in) * p->in_plane;
      const size_t out_offset = ((size_t)n * s->out_channels + (size_t)g * p->group_out) * p->out_plane;
      float *yg = t->y + out_offset;
      const float *rg = t->residual ? t->residual + out_offset : 0;
      const float *ag = t->packed + (size_t)g * p->row_panels * MR * p->k; /* the group's blocks */
      const float *bg = t->bias ? t->bias + (size_t)g * p->group_out : 0;
      for (int32_t c0 = 0; c0 < p->group_in; c0 += p->block_channels) {
        const int32_t c1 = min_i32(p->group_in, c0 + p->block_channels);
        const int32_t k0 = c0 * p->taps;
        const int32_t kc = (c1 - c0) * p->taps;
        const int32_t first = c0 == 0, last = c1 == p->group_in;
        /* B block: panel j at b + j·panel_step, row stride NR; or, indirect, its rows at
           rows + j·kc. */
        if (p->direct) {
          pack_planes(xg + (size_t)k0 * p->in_plane + pc, (size_t)p->in_plane, kc, nc, t->scratch);
        } else {
          pack_im2col(s, p, xg, pc, nc, c0, c1, spans, pool, t->scratch, rows);
        }
        const float *b = t->scratch;
        const size_t panel_step = (size_t)kc * NR;
        for (int32_t mc = m0; mc < m1; mc += MC) {
          const int32_t mc_end = min_i32(m1, mc + MC);
          for (int32_t j = 0; j * NR < nc; j++) {
            const int32_t nr = min_i32(NR, nc - j * NR);
            const float *bj = b + (size_t)j * panel_step;
            const float *const *rows_j = rows ? rows + (size_t)j * kc : 0;
            if (first && (j + 1) * NR < nc) {
              /* The next panel's output lines, one per row of this row block: written fresh
                 (read for ownership first), in as many planes as rows, too many streams for
                 the hardware prefetcher. Ask for them a whole panel ahead. */
              const float *next = yg + (size_t)pc + (size_t)(j + 1) * NR;
              for (int32_t r = mc; r < mc_end; r++) {
                __builtin_prefetch(next + (size_t)r * ldc, 1);
                __builtin_prefetch(next + (size_t)r * ldc + NR - 1, 1);
              }
            }
            for (int32_t i = mc; i < mc_end; i += MR) {
              const int32_t mr = min_i32(MR, mc_end - i);
              const size_t col = (size_t)pc + (size_t)j * NR;
              tile_epilogue ep;
              ep.bias = bg ? bg + i : 0;
              ep.residual = rg ? rg + (size_t)i * ldc + col : 0;
              ep.relu = t->relu;
              gemm_tile(mr, nr, (size_t)kc, ag + ((size_t)k0 * p->row_panels + (size_t)(i / MR) * kc) * MR, bj, NR, rows_j,
                        yg + (size_t)i * ldc + col, ldc, !first, last ? &ep : 0);
            }
          }
        }
      }
    }
  }
}

/* Splitting over output channels instead of pixels pays when the planes are too small to
   share evenly (7×7 at batch 1 has 4 panels of 16 pixels for 2 threads, the last with one
   pixel): cost in computed (row × column) tiles of the busiest thread, plus packing, which
   every thread then repeats for the whole plane. */
static int32_t split_over_channels(const rk_conv2d_shape *s, const conv_plan *p, int32_t nthreads) {
  if (nthreads == 1 || p->row_panels < nthreads) return 0;
  const int64_t images = (int64_t)s->batch * s->groups;
  const int64_t pack = p->direct ? 1 : 4; /* packing one B column ≈ 1 (copies) or 4 (im2col) rows of FMAs */
  const int64_t units = images * p->pixel_panels;
  const int64_t by_pixels = (units + nthreads - 1) / nthreads * NR * ((int64_t)p->row_panels * MR + pack);
  const int64_t by_channels =
      images * p->pixel_panels * NR * (((int64_t)p->row_panels + nthreads - 1) / nthreads * MR + pack);
  return by_channels < by_pixels;
}

/* Threads split, writing disjoint parts of y:
   - grouped convolutions (ResNeXt: 32 or 64 groups of 4-32 channels): whole groups of
     every image, so a thread plans the im2col runs of a pixel chunk once for all its groups;
   - otherwise the output pixels of each image, in whole NR-pixel panels, so each thread packs
     only the im2col columns it uses; or, when the planes are too small for that to balance
     (see split_over_channels), output channels in whole MR-row panels, each thread packing
     the (small) planes itself. */
/* How rk_conv2d divides its work among nthreads slices. */
typedef enum { SPLIT_GROUPS, SPLIT_CHANNELS, SPLIT_PIXELS, SPLIT_WINO_CHANNELS, SPLIT_WINO_TILES } conv_split;

static conv_split split_of(const rk_conv2d_shape *s, int32_t nthreads) {
  if (use_winograd(s)) {
    const wino_plan w = plan_wino(s);
    return wino_split_over_channels(&w, (int64_t)s->batch * w.panels, nthreads) ? SPLIT_WINO_CHANNELS : SPLIT_WINO_TILES;
  }
  const conv_plan p = plan_conv(s);
  if (s->groups > 1 && s->batch * s->groups >= nthreads) return SPLIT_GROUPS;
  return split_over_channels(s, &p, nthreads) ? SPLIT_CHANNELS : SPLIT_PIXELS;
}

/* More slices than threads where the slices are disjoint parts of one pass over the work
   (pixels, tiles, groups), so that threads claiming them in turn even out when one runs
   slower (a core shared with other work); as many as threads where each slice would repeat
   work (the channel splits pack or transform the whole input per slice). */
#define SLICES_PER_THREAD 4
int32_t RK_API(conv2d_slices)(const rk_conv2d_shape *s, int32_t nthreads) {
  if (nthreads <= 1) return 1;
  const conv_split split = split_of(s, nthreads);
  if (split == SPLIT_CHANNELS || split == SPLIT_WINO_CHANNELS) return nthreads;
  const int32_t more = nthreads * SLICES_PER_THREAD;
  if (split == SPLIT_WINO_TILES) {
    /* Each block of tiles streams all of U: a slice must hold at least a whole block. */
    const wino_plan w = plan_wino(s);
    if ((int64_t)s->batch * w.panels < (int64_t)more * WINO_BLOCK_PANELS) return nthreads;
  }
  return split_of(s, more) == split ? more : nthreads;
}

void RK_API(conv2d)(const rk_conv2d_shape *s, const float *x, const float *packed, const float *bias,
                    const float *residual, int32_t flags, float *y, float *scratch, int32_t tid, int32_t nthreads) {
  const conv_split split = split_of(s, nthreads);
  if (split == SPLIT_WINO_CHANNELS || split == SPLIT_WINO_TILES) {
    wino_conv(s, x, packed, bias, residual, (flags & RK_RELU) != 0, y, scratch, split == SPLIT_WINO_CHANNELS, tid,
              nthreads);
    return;
  }
  const conv_plan p = plan_conv(s);
  conv_args t;
  t.s = s;
  t.p = &p;
  t.x = x;
  t.packed = packed;
  t.bias = bias;
  t.residual = residual;
  t.relu = (flags & RK_RELU) != 0;
  t.y = y;
  t.scratch = scratch;
  const int32_t images = s->batch * s->groups;
  if (split == SPLIT_GROUPS) {
    int64_t u0, u1;
    split_range(images, tid, nthreads, 1, &u0, &u1);
    while (u0 < u1) {
      /* This thread's groups [g0, g1) of image n. */
      const int32_t n = (int32_t)(u0 / s->groups), g0 = (int32_t)(u0 % s->groups);
      const int32_t g1 = (int32_t)(u1 - (int64_t)n * s->groups < s->groups ? u1 - (int64_t)n * s->groups : s->groups);
      conv_region(&t, n, g0, g1, 0, p.group_out, 0, p.out_plane);
      u0 += g1 - g0;
    }
    return;
  }
  int32_t m0, m1;
  if (split == SPLIT_CHANNELS) {
    if (row_slice(p.group_out, tid, nthreads, &m0, &m1))
      for (int32_t image = 0; image < images; image++)
        conv_region(&t, image / s->groups, image % s->groups, image % s->groups + 1, m0, m1, 0, p.out_plane);
    return;
  }
  const int64_t units = (int64_t)images * p.pixel_panels;
  int64_t u = units * tid / nthreads;
  const int64_t u1 = units * (tid + 1) / nthreads;
  while (u < u1) {
    /* This thread's panels of one (image, group): [panel0, panel1). */
    const int32_t image = (int32_t)(u / p.pixel_panels);
    const int64_t image_start = (int64_t)image * p.pixel_panels;
    const int64_t end = u1 < image_start + p.pixel_panels ? u1 : image_start + p.pixel_panels;
    const int32_t panel0 = (int32_t)(u - image_start), panel1 = (int32_t)(end - image_start);
    conv_region(&t, image / s->groups, image % s->groups, image % s->groups + 1, 0, p.group_out, panel0 * NR,
                min_i32(p.out_plane, panel1 * NR));
    u = end;
  }
}

/* ---------------------------------------------------------------------------------------
 * Pooling, linear, elementwise.
 * ------------------------------------------------------------------------------------- */

/* d[i] = max(d[i], s[i·stride]) for i < n, where NaN wins (and then stays), as torch's
   max pool; strides 1 and 2 get loops the compiler vectorises. */
static inline void max_into(float *restrict d, const float *restrict s, int32_t n, int32_t stride) {
#define RK_MAX_INTO(index)                         \
  for (int32_t i = 0; i < n; i++) {                \
    const float v = s[index];                      \
    d[i] = (v > d[i] || v != v) ? v : d[i];        \
  }
  if (stride == 1) {
    RK_MAX_INTO(i)
  } else if (stride == 2) {
    RK_MAX_INTO(2 * i)
  } else {
    RK_MAX_INTO(i * stride)
  }
#undef RK_MAX_INTO
}

/* Rows up to twice this wide take max_pool2d's stride-2 path (its two half rows live on the stack). */
#define MAX_POOL_HALF_ROW 1024

/* Threads split output rows of all planes (N·C·OH), so even a 3-channel batch-1 input
   divides evenly; rows are disjoint in y. Each output row is the running max over the
   window's taps in torch's order (ky, then kx), one tap at a time across the whole row:
   the columns whose tap falls inside the input form one range, found by arithmetic. */
void RK_API(max_pool2d)(const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,
                        int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h,
                        int32_t pad_w, int32_t dilation_h, int32_t dilation_w, int32_t out_h, int32_t out_w, float *y,
                        int32_t tid, int32_t nthreads) {
  int64_t r0, r1;
  split_range((int64_t)batch * channels * out_h, tid, nthreads, 1, &r0, &r1);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t plane = row / out_h;
    const int32_t oy = (int32_t)(row % out_h);
    const float *xp = x + plane * in_h * in_w;
    float *yr = y + row * out_w;
    for (int32_t ox = 0; ox < out_w; ox++) yr[ox] = -__builtin_inff();
    for (int32_t ky = 0; ky < kernel_h; ky++) {
      const int32_t iy = oy * stride_h - pad_h + ky * dilation_h;
      if (iy < 0 || iy >= in_h) continue;
      const float *xr = xp + (int64_t)iy * in_w;
      if (stride_w == 2 && dilation_w == 1 && in_w <= 2 * MAX_POOL_HALF_ROW) {
        /* Column stride 2 (ResNet's 3×3/2): split the row into its even and odd columns
           once; each tap then reads one of them contiguously (kx/2 in) instead of every
           tap gathering every other column. */
        float phase[2][MAX_POOL_HALF_ROW];
        for (int32_t i = 0; 2 * i < in_w; i++) phase[0][i] = xr[2 * i];
        for (int32_t i = 0; 2 * i + 1 < in_w; i++) phase[1][i] = xr[2 * i + 1];
        for (int32_t kx = 0; kx < kernel_w; kx++) {
          const int32_t off = kx - pad_w; /* ox reads ix = 2·ox + off */
          const int32_t q = off & 1, base = (off - q) / 2; /* ix = 2·(ox + base) + q */
          const int32_t lo = off >= 0 ? 0 : (-off + 1) / 2;
          const int32_t hi = off > in_w - 1 ? 0 : min_i32(out_w, (in_w - 1 - off) / 2 + 1);
          if (lo < hi) max_into(yr + lo, phase[q] + base + lo, hi - lo, 1);
        }
        continue;
      }
      for (int32_t kx = 0; kx < kernel_w; kx++) {
        /* Column ox reads ix = ox·sw + off; inside the input for ox in [lo, hi). */
        const int32_t off = kx * dilation_w - pad_w;
        const int32_t lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
        const int32_t hi = off > in_w - 1 ? 0 : min_i32(out_w, (in_w - 1 - off) / stride_w + 1);
        if (lo < hi) max_into(yr + lo, xr + (int64_t)lo * stride_w + off, hi - lo, stride_w);
      }
    }
  }
}

/* Threads split output rows of all planes (N·C·OH): at 1×1 output that is one row per
   channel, 2048 of them in ResNet-50. */
void RK_API(adaptive_avg_pool2d)(const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,
                                 int32_t out_h, int32_t out_w, float *y, int32_t tid, int32_t nthreads) {
  int64_t r0, r1;
  split_range((int64_t)batch * channels * out_h, tid, nthreads, 1, &r0, &r1);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t plane = row / out_h;
    const int32_t oy = (int32_t)(row % out_h);
    const float *xp = x + plane * in_h * in_w;
    const int32_t y0 = oy * in_h / out_h, y1 = ((oy + 1) * in_h + out_h - 1) / out_h;
    for (int32_t ox = 0; ox < out_w; ox++) {
      const int32_t x0 = ox * in_w / out_w, x1 = ((ox + 1) * in_w + out_w - 1) / out_w;
      double sum = 0.0; /* as the reference, which sums in float64 */
      for (int32_t iy = y0; iy < y1; iy++)
        for (int32_t ix = x0; ix < x1; ix++) sum += xp[(int64_t)iy * in_w + ix];
      y[row * out_w + ox] = (float)(sum / ((y1 - y0) * (x1 - x0)));
    }
  }
}

/* Σ a[i]·b[i] over n, in 16 independent lanes so that compilers vectorise it without
   reassociating (no -ffast-math). */
static float dot(const float *restrict a, const float *restrict b, int32_t n) {
  float lanes[16] = {0};
  int32_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int32_t l = 0; l < 16; l++) lanes[l] += a[i + l] * b[i + l];
  float sum = 0.0f;
  for (; i < n; i++) sum += a[i] * b[i];
  for (int32_t l = 0; l < 8; l++) lanes[l] += lanes[l + 8];
  for (int32_t l = 0; l < 4; l++) lanes[l] += lanes[l + 4];
  return sum + ((lanes[0] + lanes[2]) + (lanes[1] + lanes[3]));
}

/* Threads split output features: the weight (O × I, 8 MiB in ResNet-50's fc) is the
   traffic, and each thread streams its own rows of it once for the whole batch. */
void RK_API(linear)(const float *x, const float *w, const float *bias, int32_t batch, int32_t in_features,
                    int32_t out_features, float *y, int32_t tid, int32_t nthreads) {
  int64_t o0, o1;
  split_range(out_features, tid, nthreads, 1, &o0, &o1);
  for (int64_t o = o0; o < o1; o++) {
    const float *wr = w + o * in_features;
    const float b = bias ? bias[o] : 0.0f;
    for (int32_t n = 0; n < batch; n++)
      y[(int64_t)n * out_features + o] = dot(x + (int64_t)n * in_features, wr, in_features) + b;
  }
}

/* Threads split the flat N·C·plane range in cache lines; any plane size divides evenly. */
void RK_API(channel_affine)(const float *x, const float *scale, const float *shift, int32_t batch, int32_t channels,
                            int32_t plane, float *y, int32_t tid, int32_t nthreads) {
  int64_t e0, e1;
  split_range((int64_t)batch * channels * plane, tid, nthreads, 16, &e0, &e1);
  while (e0 < e1) {
    const int64_t index = e0 / plane;
    const int32_t c = (int32_t)(index % channels);
    const int64_t end = (index + 1) * plane < e1 ? (index + 1) * plane : e1;
    const float a = scale[c], b = shift[c];
    for (int64_t i = e0; i < end; i++) y[i] = x[i] * a + b;
    e0 = end;
  }
}

/* Threads split the flat range in cache lines. */
void RK_API(add)(const float *a, const float *b, int64_t n, int32_t flags, float *y, int32_t tid, int32_t nthreads) {
  int64_t i0, i1;
  split_range(n, tid, nthreads, 16, &i0, &i1);
  if (flags & RK_RELU) {
    for (int64_t i = i0; i < i1; i++) {
      const float v = a[i] + b[i];
      y[i] = v > 0.0f ? v : 0.0f;
    }
  } else {
    for (int64_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
  }
}

/* Threads split the flat range in cache lines. x > 0 ? x : 0, as the reference (NaN → 0). */
void RK_API(relu)(const float *x, int64_t n, float *y, int32_t tid, int32_t nthreads) {
  int64_t i0, i1;
  split_range(n, tid, nthreads, 16, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

const char *RK_API(isa)(void) {
#if defined(RK_AVX512)
  return "avx512f";
#elif defined(RK_AVX2)
  return "avx2-fma";
#elif defined(__wasm_simd128__) && defined(__wasm_relaxed_simd__)
  return "wasm-simd128-relaxed";
#elif defined(__wasm_simd128__)
  return "wasm-simd128";
#elif defined(RK_VEC4)
  return "neon";
#else
  return "scalar";
#endif
}
