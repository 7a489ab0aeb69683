/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the register-tiled GEMM micro-kernels, f32_gemm_<M>x<N>__<isa> (B rows in a packed panel) and f32_igemm_<M>x<N>__<isa> (B rows through pointers), from one template per kind of ISA (vector or scalar). */

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

#if defined(RK_VECTOR_TILES)

#if defined(RK_VEC_MASKS)
/* store_vec for the first n lanes only (0 < n ≤ VL): nothing past them is read or written. */
RK_INLINE void store_vec_n(vec v, float *c, size_t ldc, int r, int col, int n, int32_t accumulate,
                           const tile_epilogue *ep) {
  const vec_mask m = vec_mask_first(n);
  float *p = c + (size_t)r * ldc + col;
  if (accumulate) v = vec_add(v, vec_load_masked(m, p));
  if (ep) {
    if (ep->bias) v = vec_add(v, vec_splat_load(ep->bias + r));
    if (ep->residual) v = vec_add(v, vec_load_masked(m, ep->residual + (size_t)r * ldc + col));
    if (ep->relu) v = vec_relu(v);
  }
  vec_store_masked(m, p, v);
}
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
RK_INLINE void f32_gemm_tile__vec(const int MRV, const int NRV, const int INDIRECT, const int A_ROWS, size_t kc, const float *restrict a,
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
  /* A's row r at a + r·A_STEP: packed panels interleave the rows, row-major A (A_ROWS) keeps
     them KC floats apart. */
  const size_t A_STEP = A_ROWS ? KC : 1;
  vec c0a = vec_zero(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
  vec c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
  vec c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a, c8a = c0a, c8b = c0a;
  vec c9a = c0a, c9b = c0a, c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a;
  for (size_t k = 0; k < kc; k++) {
    const float *bk = INDIRECT ? rows[k] : b;
#if defined(RK_A_PREFETCH)
    /* A streams from memory the first time a row panel is used (weights touched once per
       forward); ask for it a few lines ahead. */
    if (!A_ROWS) __builtin_prefetch(a + RK_A_PREFETCH);
#endif
    const vec b0 = vec_load(bk);
    const vec b1 = NRV > VL ? vec_load(bk + VL) : b0;
    if (!INDIRECT) b += ldb;
#define RK_ROW(r)                                       \
  if (MRV > r) {                                        \
    const vec av = vec_splat_load(a + r * A_STEP);      \
    c##r##a = vec_madd(av, b0, c##r##a);                \
    if (NRV > VL) c##r##b = vec_madd(av, b1, c##r##b);  \
  }
    RK_ALL_ROWS
#undef RK_ROW
    a += A_ROWS ? 1 : MR;
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
#if defined(RK_VEC_MASKS)
  /* Partial tiles (the last pixel panel of a plane, the last rows of a group) store through
     lane masks instead of the scalar path. */
  {
    const int n0 = nr < VL ? nr : VL, n1 = nr > VL ? nr - VL : 0;
#define RK_ROW(r)                                                                            \
  if (MRV > r && mr > r) {                                                                   \
    store_vec_n(c##r##a, c, ldc, r, 0, n0, accumulate, ep);                                  \
    if (NRV > VL && n1 > 0) store_vec_n(c##r##b, c, ldc, r, VL, n1, accumulate, ep);         \
  }
    RK_ALL_ROWS
#undef RK_ROW
    return;
  }
#endif
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
RK_INLINE void f32_gemm_tile__scalar(const int MRV, const int NRV, const int INDIRECT, const int A_ROWS, size_t kc, const float *restrict a,
                                     const float *restrict b, size_t ldb, const float *const *rows, float *restrict c, size_t ldc, int32_t mr,
                                     int32_t nr, int32_t accumulate, const tile_epilogue *ep) {
  float acc[MR * NR];
  for (int i = 0; i < MR * NR; i++) acc[i] = 0.0f;
  for (size_t k = 0; k < kc; k++) {
    const float *bk = INDIRECT ? rows[k] : b;
    for (int r = 0; r < MRV; r++) {
      const float av = a[A_ROWS ? (size_t)r * KC : (size_t)r];
      for (int j = 0; j < NRV; j++) acc[r * NR + j] += av * bk[j];
    }
    a += A_ROWS ? 1 : MR;
    if (!INDIRECT) b += ldb;
  }
  tile_store_scalar(acc, c, ldc, mr, nr, accumulate, ep);
}

#define RK_TILE_ISA scalar
#define RK_TILE_BODY f32_gemm_tile__scalar

#endif

/* f32_gemm_<MRV>x<NRV>__<isa>, f32_igemm_<MRV>x<NRV>__<isa> and f32_gemm_arows_<MRV>x<NRV>__<isa>
   (A read as rows KC floats apart, not packed panels: the weight gradient's im2col rows, copied
   with contiguous runs instead of transposed): the register tiles, one function each. */
#define RK_TILE_NAME_(kind, isa, m, n) kind##_##m##x##n##__##isa
#define RK_TILE_NAME(kind, isa, m, n) RK_TILE_NAME_(kind, isa, m, n)
#define RK_DEFINE_TILE_KIND(kind, indirect, a_rows, m, n)                                                      \
  static void RK_TILE_NAME(kind, RK_TILE_ISA, m, n)(size_t kc, const float *a, const float *b, size_t ldb,     \
                                                     const float *const *rows, float *c, size_t ldc, int32_t mr, \
                                                     int32_t nr, int32_t accumulate, const tile_epilogue *ep) {   \
    RK_TILE_BODY(m, n, indirect, a_rows, kc, a, b, ldb, rows, c, ldc, mr, nr, accumulate, ep);                 \
  }
#define RK_DEFINE_TILE(m, n)                                                                            \
  RK_DEFINE_TILE_KIND(f32_gemm, 0, 0, m, n) RK_DEFINE_TILE_KIND(f32_igemm, 1, 0, m, n)                  \
  RK_DEFINE_TILE_KIND(f32_gemm_arows, 0, 1, m, n)
#define RK_TILE_ROW(m, n, half)                                                           \
  {{RK_TILE_NAME(f32_gemm, RK_TILE_ISA, m, n), RK_TILE_NAME(f32_igemm, RK_TILE_ISA, m, n)}, \
   {RK_TILE_NAME(f32_gemm, RK_TILE_ISA, m, half), RK_TILE_NAME(f32_igemm, RK_TILE_ISA, m, half)}}
#define RK_ROWS_TILE_ROW(m, n, half) {RK_TILE_NAME(f32_gemm_arows, RK_TILE_ISA, m, n), RK_TILE_NAME(f32_gemm_arows, RK_TILE_ISA, m, half)}

/* gemm_tiles[mr - 1][narrow][indirect]: mr rows × (narrow ? NR_HALF : NR) columns, for every
   row count of RK_TILE_ROWS (1 .. MR, listed by the ISA's blocking header); NR_HALF serves the
   last, narrow pixel panel (a 7×7 plane is 3 panels of 16 and one of 1). gemm_arows_tiles[mr -
   1][narrow] likewise. */
#define RK_TILES_OF_ROWS(m) RK_DEFINE_TILE(m, NR) RK_DEFINE_TILE(m, NR_HALF)
RK_TILE_ROWS(RK_TILES_OF_ROWS)
#define RK_TABLE_ROW(m) RK_TILE_ROW(m, NR, NR_HALF),
static gemm_tile_fn const gemm_tiles[][2][2] = {RK_TILE_ROWS(RK_TABLE_ROW)};
_Static_assert(sizeof gemm_tiles / sizeof gemm_tiles[0] == MR, "RK_TILE_ROWS must list 1 .. MR");
#define RK_ROWS_TABLE_ROW(m) RK_ROWS_TILE_ROW(m, NR, NR_HALF),
static gemm_tile_fn const gemm_arows_tiles[][2] = {RK_TILE_ROWS(RK_ROWS_TABLE_ROW)};

/* c (mr × nr) = [c +] a (mr rows KC floats apart, kc long) · b (kc × NR panel). */
RK_INLINE void gemm_tile_arows(int32_t mr, int32_t nr, size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               int32_t accumulate) {
  gemm_arows_tiles[mr - 1][nr <= NR_HALF](kc, a, b, NR, 0, c, ldc, mr, nr, accumulate, 0);
}

RK_INLINE void gemm_tile(int32_t mr, int32_t nr, size_t kc, const float *a, const float *b, size_t ldb,
                         const float *const *rows, float *c, size_t ldc, int32_t accumulate, const tile_epilogue *ep) {
  gemm_tiles[mr - 1][nr <= NR_HALF][rows != 0](kc, a, b, ldb, rows, c, ldc, mr, nr, accumulate, ep);
}
