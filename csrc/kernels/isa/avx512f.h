/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the AVX-512F build, 16 floats a vector. */
#include <immintrin.h>

/* 12 rows × 2 zmm: 24 accumulators, 2 loads of B and 12 broadcasts of A per 24 FMAs, so the
   two FMA pipes, not the load ports, set the pace (8 × 32 measured the same over whole
   ResNet-18/50 forwards: faster on 64-channel layers, slower on the 3×3s). A KC × NR panel of B is 32 KiB, A's 12 KiB: both in a 48 KiB
   L1. A is prefetched 16 k-steps ahead: in a forward pass each weight is touched once, so a
   row panel's A arrives from memory, not from L2 (1-4% on ResNet-50, one thread). */
#define MR 12
#define NR 32
#define NR_HALF 16
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
#define RK_A_PREFETCH (MR * 16)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 8)
/* Winograd F(2, 3) from this many input channels (64 on planes of 28×28 and up); below, the
   padded direct convolution is faster (measured at batch 128: 16 channels at 28×28 1.9×, 32 at
   14×14 1.8×, 64 at 7×7 1.5×; level at 64 channels 56×56). */
#define RK_WINO_MIN_CHANNELS 128
#define RK_WINO_MIN_CHANNELS_LARGE_PLANE 64

/* The vector operations the tiles use (see csrc/kernels/f32-gemm.c): `vec` holds VL floats (16 in a zmm register, 8 in a
   ymm, 4 in SIMD128 or NEON). vec_relu keeps NaN (v < 0 ? 0 : v), as the reference
   epilogue does. */
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
/* Lane masks: partial tiles load and store their first n lanes only. */
#define RK_VEC_MASKS 1
typedef __mmask16 vec_mask;
#define vec_mask_first(n) ((__mmask16)((1u << (n)) - 1u))
#define vec_load_masked(m, p) _mm512_maskz_loadu_ps(m, p)
#define vec_store_masked(m, p, v) _mm512_mask_storeu_ps(p, m, v)
