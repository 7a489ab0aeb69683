/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the
   register tile and cache blocking of the 128-bit builds (SIMD128, NEON) and of portable C:
   MR rows × 2 vectors of 4 floats. 4 rows (8 accumulators) unless the ISA header sets MR and
   RK_TILE_ROWS before including this one (WebAssembly: 6, see wasmsimd.h). */
#if !defined(MR)
#define MR 4
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4)
#endif
#define NR 8
#define NR_HALF 4
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
/* Winograd F(2, 3) from this many input channels: with 4-float vectors the direct GEMM runs
   at half the rate of the wider builds, so Winograd's 2.25× fewer multiplies win from fewer
   channels (WebAssembly, batch 128: 32 channels at 14×14 1.1×, 64 at 7×7 1.4× the padded
   direct convolution; level at 16 channels 28×28). */
#define RK_WINO_MIN_CHANNELS 32
#define RK_WINO_MIN_CHANNELS_LARGE_PLANE 32
/* Winograd F(4, 3) on planes of at least this many 4×4 tiles (13×13 and up, the last tiles
   overhanging the plane where its sides are not multiples of 4); F(2, 3) on smaller ones
   (7×7: 4 tiles, too few; see winograd.c). */
#define RK_WINO4_MIN_TILES 16
