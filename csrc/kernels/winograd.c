/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): Winograd F(2×2, 3×3) and F(4×4, 3×3). */

/* ---------------------------------------------------------------------------------------
 * Winograd F(m×m, 3×3), m = 2 or 4, for 3×3 stride-1 undilated ungrouped convolutions (Lavin
 * & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each m×m block of
 * outputs ("tile") is computed from its α×α input window d (α = m + 2) as
 *   y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
 * so the 9·m² multiply-adds per tile, input and output channel of the direct convolution
 * become α² (16 for m = 2: 2.25× fewer; 36 for m = 4: 4× fewer), done as α² independent
 * GEMMs (one per element ξ of the transformed tile):
 *   M_ξ (O × tiles) = U_ξ (O × C) · V_ξ (C × tiles)
 * with U = G g Gᵀ packed once (conv2d_pack) and V = Bᵀ d B built per block of tiles.
 * F(2, 3), interpolation points 0, ±1:
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 -1 -1]
 * The transforms only add and subtract (G halves): F(2, 3) loses no more than a few ulps
 * against the direct sum.
 * F(4, 3), points 0, 1, −1, 2, −½ (Toom-Cook; Barabasz et al. 2020 show that mixing 2 and ½
 * keeps the transforms' magnitudes, and so the rounding, lower than Lavin & Gray's 0, ±1, ±2:
 * measured here 2-2.5× lower, about 3e-6 of the output's largest magnitude at 128 channels
 * of uniform data, against 1e-7 for F(2, 3)):
 *   Bᵀ = [1 3/2 -2 -3/2 1 0; 0 -1 -5/2 -1/2 1 0; 0 1 1/2 -5/2 1 0; 0 -1/2 -1 1/2 1 0;
 *         0 2 -1 -2 1 0; 0 1 3/2 -2 -3/2 1]
 *   G = [1 0 0; -1/3 -1/3 -1/3; 1/3 -1/3 1/3; 1/15 2/15 4/15; -16/15 8/15 -4/15; 0 0 1]
 *   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -1/2 0; 0 1 1 4 1/4 0; 0 1 -1 8 -1/8 1]
 * F(4, 3)'s U is computed in float64 and rounded once. It is used on planes whose sides are
 * multiples of 4 (no wasted tile rows: 56×56, 28×28) with enough tiles (see use_wino4).
 * A NaN input reaches exactly the outputs whose windows hold it (the transforms add only
 * nonzero terms); an infinite one can give NaN (∞ − ∞) where the direct sum gives ±∞. No
 * barrier between the three steps: a thread transforms the input of its own block of tiles
 * (all channels), runs the α² GEMMs with the same packed micro-kernel as the direct
 * convolution, and transforms back into y with the epilogue.
 * ------------------------------------------------------------------------------------- */

#define WINO_MAX_ALPHA 6   /* the input window of F(4, 3) */
#define WINO_MAX_XI 36     /* elements of a transformed tile, at most */
#define WINO_BLOCK_PANELS 4 /* NR-tile panels per block (F(2, 3)): V_ξ (C × 4·NR) stays in L2 */
/* F(4, 3)'s V has 36 planes: its blocks take as many panels as keep V within this many floats. */
#define WINO4_V_FLOATS ((size_t)1 << 18)

typedef struct {
  int32_t m, alpha, xi;            /* F(m, 3): output tile m×m, input window α×α, α² GEMMs */
  int32_t tiles_h, tiles_w, tiles; /* m×m output tiles of one image */
  int32_t panels;                  /* ceil(tiles / NR) */
  int32_t block_panels;            /* panels per block */
  int32_t row_panels;              /* ceil(O / MR) */
  int32_t row_len;                 /* input columns one row of tiles reads: m·tiles_w + 2 */
} wino_plan;

/* Winograd where it pays: the transforms cost about as much as 2-4 output channels of GEMM
   per tile, so both channel counts must be well above that; and U is 16/9 the size of the
   weight, streamed once per block of one image's tiles, so planes of few tiles wait on memory
   for it. Measured at 512 channels, 2 threads: 7×7 (16 tiles) 1.5× faster than direct (with U
   packed K-block-major, one stream per block), 5×5 (9 tiles) 1.2× and 4×4 (4) 1.6× slower.
   With few input channels the 16 GEMMs are too shallow (depth C): the padded direct
   convolution (conv-padded.c) is faster there, below a count each build measures for its
   tile (RK_WINO_MIN_CHANNELS in its ISA header). */
#define WINO_MIN_TILES 16
static int32_t use_winograd(const rk_conv2d_shape *s) {
  return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dilation_h == 1 &&
         s->dilation_w == 1 && s->groups == 1 && s->in_channels >= 16 && s->out_channels >= 16 &&
         ceil_div(s->out_h, 2) * ceil_div(s->out_w, 2) >= WINO_MIN_TILES &&
         (s->in_channels >= RK_WINO_MIN_CHANNELS ||
          (s->in_channels >= RK_WINO_MIN_CHANNELS_LARGE_PLANE && s->out_h * s->out_w >= 28 * 28));
}

/* F(4, 3) where its 4×4 tiles are many (RK_WINO4_MIN_TILES, in the builds whose ISA header sets
   it); the last row and column of tiles may overhang the plane (a 14×14 plane is 4×4 tiles of
   16×16 outputs: the input reads zeros there and the stores stop at the edge). 4× fewer
   multiplies than the direct convolution against F(2, 3)'s 2.25×, for transforms that cost
   more per tile and a U of 36/9 the weight (streamed once per block: small planes would wait on
   memory for it). It pays where the GEMM is slow next to the transforms: 4-float vectors
   (WebAssembly, batch 1, one thread: ResNet-18 5-8% faster than with F(2, 3) at 56×56 and 28×28,
   ResNet-50 2%; at 14×14 too, despite the overhang: 0.96 and 0.97 of the time again); with
   AVX-512 the two measured level, so the wide builds keep F(2, 3) and its lower rounding. */
static int32_t use_wino4(const rk_conv2d_shape *s) {
#if defined(RK_WINO4_MIN_TILES)
  return ceil_div(s->out_h, 4) * ceil_div(s->out_w, 4) >= RK_WINO4_MIN_TILES;
#else
  (void)s;
  return 0;
#endif
}

static wino_plan plan_wino(const rk_conv2d_shape *s) {
  wino_plan w;
  w.m = use_wino4(s) ? 4 : 2;
  w.alpha = w.m + 2;
  w.xi = w.alpha * w.alpha;
  w.tiles_h = ceil_div(s->out_h, w.m);
  w.tiles_w = ceil_div(s->out_w, w.m);
  w.tiles = w.tiles_h * w.tiles_w;
  w.panels = ceil_div(w.tiles, NR);
  if (w.m == 2) {
    w.block_panels = min_i32(w.panels, WINO_BLOCK_PANELS);
  } else {
    const size_t fit = WINO4_V_FLOATS / ((size_t)w.xi * NR * s->in_channels); /* panels whose V fits */
    w.block_panels = min_i32(w.panels, fit < 1 ? 1 : fit < WINO_BLOCK_PANELS ? (int32_t)fit : WINO_BLOCK_PANELS);
  }
  w.row_panels = ceil_div(s->out_channels, MR);
  w.row_len = w.m * w.tiles_w + 2;
  return w;
}

static size_t round_line(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* One thread's scratch: V [ξ][panel][c][NR] of a block, M [ξ][o][block lane] for all O, the
   α rows of the vertical pass and a zero row. */
static size_t wino_v_floats(const rk_conv2d_shape *s, const wino_plan *w) {
  return round_line((size_t)w->xi * w->block_panels * NR * s->in_channels);
}
static size_t wino_m_floats(const wino_plan *w) {
  return round_line((size_t)w->xi * w->row_panels * MR * w->block_panels * NR);
}
static size_t wino_scratch_per_thread(const rk_conv2d_shape *s, const wino_plan *w) {
  return wino_v_floats(s, w) + wino_m_floats(w) + (size_t)(w->alpha + 1) * round_line((size_t)w->row_len);
}

/* t (6) = G g (3): F(4, 3)'s filter transform of one row or column, in float64. */
static void wino_filter_column(double g0, double g1, double g2, double *t) {
  t[0] = g0;
  t[1] = -(g0 + g1 + g2) / 3.0;
  t[2] = (g0 - g1 + g2) / 3.0;
  t[3] = (g0 + 2.0 * g1 + 4.0 * g2) / 15.0;
  t[4] = (-16.0 * g0 + 8.0 * g1 - 4.0 * g2) / 15.0;
  t[5] = g2;
}

/* U_ξ = G g Gᵀ of each (o, c), output channel o's weight first multiplied by scale[o] (NULL:
   none), per ξ in K blocks of KC channels, each block's MR-row panels one after another:
   packed[ξ][block][panel][c - c0][r] (see conv2d_pack). The ξ planes lie a multiple of
   4 KiB apart for ResNet's shapes, so writing all of them per (o, c) would land every store in
   one L1 set: a chunk of WINO_PACK_CHUNK channels of a panel is transformed into a local
   buffer first, then each ξ's part of it (contiguous in packed) is copied out in one run. */
#define WINO_PACK_CHUNK 16
static void wino_pack(const rk_conv2d_shape *s, const float *weight, const double *scale, float *packed, int32_t tid,
                      int32_t nthreads) {
  const wino_plan w = plan_wino(s);
  const int32_t C = s->in_channels, O = s->out_channels, alpha = w.alpha;
  const size_t xi_stride = (size_t)w.row_panels * C * MR;
  /* Threads split whole MR-row panels. */
  const int32_t panel0 = (int32_t)((int64_t)w.row_panels * tid / nthreads);
  const int32_t panel1 = (int32_t)((int64_t)w.row_panels * (tid + 1) / nthreads);
  float chunk[WINO_MAX_XI][WINO_PACK_CHUNK * MR];
  for (int32_t panel = panel0; panel < panel1; panel++) {
    for (int32_t c0 = 0; c0 < C; c0 += KC) {
      const int32_t kc = min_i32(KC, C - c0);
      for (int32_t cc = c0; cc < c0 + kc; cc += WINO_PACK_CHUNK) {
        const int32_t n = min_i32(WINO_PACK_CHUNK, c0 + kc - cc); /* KC is a multiple of the chunk */
        for (int32_t c = cc; c < cc + n; c++) {
          for (int32_t r = 0; r < MR; r++) {
            const int32_t o = panel * MR + r;
            float *u = &chunk[0][(c - cc) * MR + r]; /* u[ξ] at u + ξ·WINO_PACK_CHUNK·MR */
            const size_t step = WINO_PACK_CHUNK * MR;
            if (o >= O) {
              for (int32_t xi = 0; xi < w.xi; xi++) u[xi * step] = 0.0f;
              continue;
            }
            const float *src = weight + ((size_t)o * C + c) * 9;
            float g[9];
            for (int j = 0; j < 9; j++) g[j] = scale ? (float)((double)src[j] * scale[o]) : src[j];
            if (w.m == 2) {
              /* F(2, 3)'s G only halves: float32 throughout, as it always has been (the train
                 tests' chaotic ResNet-50 case is calibrated on these bits). */
              float t[4][3]; /* G g */
              for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
              }
              for (int i = 0; i < 4; i++) { /* (G g) Gᵀ */
                u[(i * 4 + 0) * step] = t[i][0];
                u[(i * 4 + 1) * step] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                u[(i * 4 + 2) * step] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                u[(i * 4 + 3) * step] = t[i][2];
              }
              continue;
            }
            double t[3][WINO_MAX_ALPHA], col[WINO_MAX_ALPHA]; /* t = (G g)ᵀ by columns of g */
            for (int j = 0; j < 3; j++) wino_filter_column(g[j], g[3 + j], g[6 + j], t[j]);
            for (int32_t i = 0; i < alpha; i++) { /* row i of (G g) Gᵀ */
              wino_filter_column(t[0][i], t[1][i], t[2][i], col);
              for (int32_t k = 0; k < alpha; k++) u[(i * alpha + k) * step] = (float)col[k];
            }
          }
        }
        const size_t at = (size_t)c0 * w.row_panels * MR + ((size_t)panel * kc + (cc - c0)) * MR;
        for (int32_t xi = 0; xi < w.xi; xi++) {
          float *d = packed + xi * xi_stride + at;
          for (int32_t q = 0; q < n * MR; q++) d[q] = chunk[xi][q];
        }
      }
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

/* d[i] = (Bᵀ e)[i] for i < α, e the α inputs of one column or row: the input transform. */
#define WINO2_INPUT(e0, e1, e2, e3, d0, d1, d2, d3) \
  do {                                              \
    d0 = (e0) - (e2);                               \
    d1 = (e1) + (e2);                               \
    d2 = (e2) - (e1);                               \
    d3 = (e1) - (e3);                               \
  } while (0)
#define WINO4_INPUT(e0, e1, e2, e3, e4, e5, d0, d1, d2, d3, d4, d5) \
  do {                                                              \
    d0 = (e0) - 2.0f * (e2) + (e4) + 1.5f * ((e1) - (e3));          \
    d1 = (e4) - (e1) - 2.5f * (e2) - 0.5f * (e3);                   \
    d2 = (e4) + (e1) + 0.5f * (e2) - 2.5f * (e3);                   \
    d3 = (e4) - (e2) + 0.5f * ((e3) - (e1));                        \
    d4 = (e4) - (e2) + 2.0f * ((e1) - (e3));                        \
    d5 = (e5) + (e1) - 2.0f * (e3) + 1.5f * ((e2) - (e4));          \
  } while (0)

/* V of tiles [t0, t0 + count) of image n, all channels, as B panels: V[ξ][panel][c][NR],
   lanes past `count` zero. Per channel and row of tiles: the vertical pass Bᵀ over the α
   input rows (whole rows, vectorisable), then the horizontal pass over each tile's α columns
   into the α² ξ streams. */
static void wino_input(const wino_args *a, int32_t n, int32_t t0, int32_t count, int32_t panels) {
  const rk_conv2d_shape *s = a->s;
  const wino_plan *w = a->w;
  const int32_t C = s->in_channels, H = s->in_h, W = s->in_w, m = w->m, alpha = w->alpha;
  const size_t xi_stride = (size_t)panels * C * NR;
  float *r[WINO_MAX_ALPHA], *zero = a->rows + (size_t)alpha * round_line((size_t)w->row_len);
  for (int32_t i = 0; i < alpha; i++) r[i] = a->rows + i * round_line((size_t)w->row_len);
  /* Lanes past the last tile stay zero through the GEMM (their M is never read). */
  const int32_t lanes = panels * NR;
  if (count < lanes) {
    for (int32_t xi = 0; xi < w->xi; xi++)
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
      const int32_t ix0 = m * tx0 - s->pad_w, len = m * (tx1 - tx0) + 2;
      const int32_t lo = min_i32(len, max_i32(0, -ix0)), hi = max_i32(lo, min_i32(len, W - ix0));
      const float *in[WINO_MAX_ALPHA];
      for (int32_t k = 0; k < alpha; k++) {
        const int32_t iy = m * ty - s->pad_h + k;
        in[k] = iy >= 0 && iy < H ? xc + (size_t)iy * W + ix0 : zero - lo; /* zero[0 .. len) */
      }
      for (int32_t i = 0; i < alpha; i++) {
        for (int32_t j = 0; j < lo; j++) r[i][j] = 0.0f;
        for (int32_t j = hi; j < len; j++) r[i][j] = 0.0f;
      }
      if (m == 2) {
        const float *restrict i0 = in[0], *restrict i1 = in[1], *restrict i2 = in[2], *restrict i3 = in[3];
        float *restrict r0 = r[0], *restrict r1 = r[1], *restrict r2 = r[2], *restrict r3 = r[3];
        for (int32_t j = lo; j < hi; j++) WINO2_INPUT(i0[j], i1[j], i2[j], i3[j], r0[j], r1[j], r2[j], r3[j]);
      } else {
        const float *restrict i0 = in[0], *restrict i1 = in[1], *restrict i2 = in[2], *restrict i3 = in[3],
                             *restrict i4 = in[4], *restrict i5 = in[5];
        float *restrict r0 = r[0], *restrict r1 = r[1], *restrict r2 = r[2], *restrict r3 = r[3], *restrict r4 = r[4],
                       *restrict r5 = r[5];
        for (int32_t j = lo; j < hi; j++)
          WINO4_INPUT(i0[j], i1[j], i2[j], i3[j], i4[j], i5[j], r0[j], r1[j], r2[j], r3[j], r4[j], r5[j]);
      }
      /* Horizontal pass, one run of lanes per panel the tiles cross. */
      for (int32_t q0 = 0; q0 < tx1 - tx0;) {
        const int32_t lane0 = t + q0 - t0;
        const int32_t run = min_i32(tx1 - tx0 - q0, NR - lane0 % NR);
        float *base = a->v + ((size_t)(lane0 / NR) * C + c) * NR + lane0 % NR;
        for (int32_t i = 0; i < alpha; i++) {
          const float *restrict src = r[i] + m * q0;
          float *restrict d0 = base + (size_t)(i * alpha + 0) * xi_stride;
          float *restrict d1 = base + (size_t)(i * alpha + 1) * xi_stride;
          float *restrict d2 = base + (size_t)(i * alpha + 2) * xi_stride;
          float *restrict d3 = base + (size_t)(i * alpha + 3) * xi_stride;
          if (m == 2) {
            for (int32_t q = 0; q < run; q++)
              WINO2_INPUT(src[2 * q], src[2 * q + 1], src[2 * q + 2], src[2 * q + 3], d0[q], d1[q], d2[q], d3[q]);
          } else {
            float *restrict d4 = base + (size_t)(i * alpha + 4) * xi_stride;
            float *restrict d5 = base + (size_t)(i * alpha + 5) * xi_stride;
            for (int32_t q = 0; q < run; q++)
              WINO4_INPUT(src[4 * q], src[4 * q + 1], src[4 * q + 2], src[4 * q + 3], src[4 * q + 4], src[4 * q + 5],
                          d0[q], d1[q], d2[q], d3[q], d4[q], d5[q]);
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
  for (int32_t xi = 0; xi < w->xi; xi++) {
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

/* o (m) = Aᵀ e (α): the output transform of one column or row. */
#define WINO2_OUTPUT(e0, e1, e2, e3, o0, o1) \
  do {                                       \
    o0 = (e0) + (e1) + (e2);                 \
    o1 = (e1) - (e2) - (e3);                 \
  } while (0)
#define WINO4_OUTPUT(e0, e1, e2, e3, e4, e5, o0, o1, o2, o3) \
  do {                                                       \
    const float s12 = (e1) + (e2), d12 = (e1) - (e2);        \
    o0 = (e0) + s12 + (e3) + (e4);                           \
    o1 = d12 + 2.0f * (e3) - 0.5f * (e4);                    \
    o2 = s12 + 4.0f * (e3) + 0.25f * (e4);                   \
    o3 = d12 + 8.0f * (e3) - 0.125f * (e4) + (e5);           \
  } while (0)

/* y = Aᵀ M A of tiles [t0, t0 + count) of image n, rows [m0, m1), with the epilogue. Per
   output channel and run of tiles in one tile row: the m output rows are built in the row
   buffers (vectorisable over tiles), then stored with the epilogue. */
static void wino_output(const wino_args *a, int32_t n, int32_t t0, int32_t count, int32_t panels, int32_t m0,
                        int32_t m1) {
  const rk_conv2d_shape *s = a->s;
  const wino_plan *w = a->w;
  const int32_t OH = s->out_h, OW = s->out_w, m = w->m;
  const size_t ldm = (size_t)panels * NR;
  const size_t ms = (size_t)w->row_panels * MR * ldm;
  float *row[4];
  for (int32_t i = 0; i < m; i++) row[i] = a->rows + i * round_line((size_t)w->row_len);
  for (int32_t o = m0; o < m1; o++) {
    const size_t plane = ((size_t)n * s->out_channels + o) * OH * OW;
    const float *ro = a->residual ? a->residual + plane : 0;
    const float bias = a->bias ? a->bias[o] : 0.0f;
    const float *mo = a->m + (size_t)(o - m0) * ldm;
    for (int32_t t = t0; t < t0 + count;) {
      const int32_t ty = t / w->tiles_w, tx0 = t % w->tiles_w;
      const int32_t tx1 = min_i32(w->tiles_w, tx0 + (t0 + count - t));
      const int32_t run = tx1 - tx0;
      const float *restrict mt = mo + (t - t0);
      if (m == 2) {
        float *restrict row0 = row[0], *restrict row1 = row[1];
        for (int32_t q = 0; q < run; q++) {
          float u0[4], u1[4]; /* Aᵀ M */
          for (int l = 0; l < 4; l++)
            WINO2_OUTPUT(mt[l * ms + q], mt[(4 + l) * ms + q], mt[(8 + l) * ms + q], mt[(12 + l) * ms + q], u0[l], u1[l]);
          WINO2_OUTPUT(u0[0], u0[1], u0[2], u0[3], row0[2 * q], row0[2 * q + 1]);
          WINO2_OUTPUT(u1[0], u1[1], u1[2], u1[3], row1[2 * q], row1[2 * q + 1]);
        }
      } else {
        for (int32_t q = 0; q < run; q++) {
          float u[4][6]; /* Aᵀ M */
          for (int l = 0; l < 6; l++)
            WINO4_OUTPUT(mt[l * ms + q], mt[(6 + l) * ms + q], mt[(12 + l) * ms + q], mt[(18 + l) * ms + q],
                         mt[(24 + l) * ms + q], mt[(30 + l) * ms + q], u[0][l], u[1][l], u[2][l], u[3][l]);
          for (int i = 0; i < 4; i++) {
            float *o = row[i] + 4 * q;
            WINO4_OUTPUT(u[i][0], u[i][1], u[i][2], u[i][3], u[i][4], u[i][5], o[0], o[1], o[2], o[3]);
          }
        }
      }
      const int32_t oy = m * ty, ox = m * tx0, width = min_i32(m * run, OW - ox);
      const size_t at = (size_t)oy * OW + ox;
      for (int32_t i = 0; i < m && oy + i < OH; i++)
        wino_store(a->y + plane + at + (size_t)i * OW, row[i], ro ? ro + at + (size_t)i * OW : 0, width, bias, a->relu);
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

/* GEMM columns that tile panels [u0, u1) of all images' panels (image after image) cost: NR a
   panel, and a plane's last panel NR_HALF where the narrow tile serves it (49 tiles in panels
   of 8 are 6 full ones and a panel of one tile, half the work of a full one). */
static int64_t wino_columns(const wino_plan *w, int64_t u0, int64_t u1) {
  const int32_t rest = w->tiles - (w->panels - 1) * NR;
  const int64_t partial = u1 / w->panels - u0 / w->panels;
  return (u1 - u0 - partial) * NR + partial * (rest <= NR_HALF ? NR_HALF : NR);
}

/* The input transform of a tile, per channel, costs about as much as the GEMM of this many
   output channels: channel slices each transform every tile, tile slices only their own.
   Measured on WebAssembly, 2 threads, from the channel split's time against one thread's:
   F(4, 3) at 128 channels 28×28 about 39, F(2, 3) at 256 channels 14×14 about 48 (the
   transforms write and read V, ξ planes of all channels, where the GEMM reads it once). */
#define WINO_TRANSFORM_ROWS 40

/* Whether output channels divide among nthreads slices better than the `units` tile panels of
   all images do: the busiest slice's GEMM columns × (rows + transform) either way. */
static int32_t wino_split_over_channels(const wino_plan *w, int64_t units, int32_t nthreads) {
  if (nthreads <= 1 || w->row_panels < nthreads) return 0;
  int64_t busiest = 0;
  for (int32_t t = 0; t < nthreads; t++) {
    const int64_t columns = wino_columns(w, units * t / nthreads, units * (t + 1) / nthreads);
    if (columns > busiest) busiest = columns;
  }
  const int64_t by_tiles = busiest * ((int64_t)w->row_panels * MR + WINO_TRANSFORM_ROWS);
  const int64_t by_channels =
      wino_columns(w, 0, units) * (((int64_t)w->row_panels + nthreads - 1) / nthreads * MR + WINO_TRANSFORM_ROWS);
  return by_channels < by_tiles;
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
  float *zero = a.rows + (size_t)w.alpha * round_line((size_t)w.row_len);
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
