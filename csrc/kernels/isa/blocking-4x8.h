/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the
   register tile and cache blocking of the 128-bit builds (SIMD128, NEON) and of portable C:
   4 rows × 2 vectors of 4 floats, 8 accumulators. */
#define MR 4
#define NR 8
#define NR_HALF 4
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
