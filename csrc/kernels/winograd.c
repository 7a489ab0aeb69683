/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): Winograd F(2×2, 3×3). */

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

/* U_ξ = G g Gᵀ of each (o, c), output channel o's weight first multiplied by scale[o] (NULL:
   none), per ξ in K blocks of KC channels, each block's MR-row panels one after another:
   packed[ξ][block][panel][c - c0][r] (see conv2d_pack). The 16 ξ planes lie a multiple of
   4 KiB apart for ResNet's shapes, so writing all 16 per (o, c) would land every store in one
   L1 set: a chunk of WINO_PACK_CHUNK channels of a panel is transformed into a local buffer
   first, then each ξ's part of it (contiguous in packed) is copied out in one run. */
#define WINO_PACK_CHUNK 16
static void wino_pack(const rk_conv2d_shape *s, const float *weight, const double *scale, float *packed, int32_t tid,
                      int32_t nthreads) {
  const wino_plan w = plan_wino(s);
  const int32_t C = s->in_channels, O = s->out_channels;
  const size_t xi_stride = (size_t)w.row_panels * C * MR;
  /* Threads split whole MR-row panels. */
  const int32_t panel0 = (int32_t)((int64_t)w.row_panels * tid / nthreads);
  const int32_t panel1 = (int32_t)((int64_t)w.row_panels * (tid + 1) / nthreads);
  float chunk[WINO_XI][WINO_PACK_CHUNK * MR];
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
              for (int xi = 0; xi < WINO_XI; xi++) u[xi * step] = 0.0f;
              continue;
            }
            const float *src = weight + ((size_t)o * C + c) * 9;
            float g[9];
            for (int j = 0; j < 9; j++) g[j] = scale ? (float)((double)src[j] * scale[o]) : src[j];
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
          }
        }
        const size_t at = (size_t)c0 * w.row_panels * MR + ((size_t)panel * kc + (cc - c0)) * MR;
        for (int xi = 0; xi < WINO_XI; xi++) {
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
