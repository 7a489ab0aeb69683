/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the AVX2+FMA build, 8 floats a vector. */
#include <immintrin.h>

/* 6 rows × 2 ymm: 12 accumulators, 2 loads of B, 6 broadcasts of A. */
#define MR 6
#define NR 16
#define NR_HALF 8
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
/* Winograd F(2, 3) from this many input channels; below, the padded direct convolution is
   faster (measured at batch 128: 16 channels at 28×28 1.5×, 32 at 14×14 1.3-1.6×; level at 64
   channels 7×7, Winograd ahead from 64 channels on larger planes). */
#define RK_WINO_MIN_CHANNELS 64
#define RK_WINO_MIN_CHANNELS_LARGE_PLANE 64

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
