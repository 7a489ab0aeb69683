/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the convolution entry points: packing the weight, the BLIS loops over a thread's region, and how threads divide the work. */

int32_t RK_API(conv2d_packing)(const rk_conv2d_shape *s) {
  return use_winograd(s) ? RK_PACKING_WINOGRAD : RK_PACKING_GEMM;
}

size_t RK_API(conv2d_packed_floats)(const rk_conv2d_shape *s) {
  if (use_winograd(s)) {
    const wino_plan w = plan_wino(s);
    return (size_t)w.xi * w.row_panels * MR * s->in_channels;
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
void RK_API(conv2d_pack)(const rk_conv2d_shape *s, const float *weight, const double *scale, float *packed,
                         int32_t tid, int32_t nthreads) {
  if (use_winograd(s)) {
    wino_pack(s, weight, scale, packed, tid, nthreads);
    return;
  }
  const conv_plan p = plan_conv(s);
  /* This thread's row panels of every group: [panel0, panel1). */
  const int32_t panel0 = (int32_t)((int64_t)p.row_panels * tid / nthreads);
  const int32_t panel1 = (int32_t)((int64_t)p.row_panels * (tid + 1) / nthreads);
  for (int32_t g = 0; g < s->groups; g++) {
    for (int32_t c0 = 0; c0 < p.group_in; c0 += p.block_channels) {
      const int32_t k0 = c0 * p.taps, kc = (min_i32(p.group_in, c0 + p.block_channels) - c0) * p.taps;
      float *block = packed + ((size_t)g * p.k + k0) * p.row_panels * MR;
      for (int32_t panel = panel0; panel < panel1; panel++) {
        float *dst = block + (size_t)panel * kc * MR;
        /* Row by row: each weight row is read front to back (one stream), and its panel,
           kc·MR floats, stays in L1 while the rows fill it in turn. */
        for (int32_t r = 0; r < MR; r++) {
          const int32_t o = panel * MR + r;
          if (o >= p.group_out) {
            for (int32_t k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0.0f;
            continue;
          }
          const size_t oc = (size_t)g * p.group_out + o;
          const float *src = weight + oc * p.k + k0;
          if (scale) {
            const double sc = scale[oc];
            for (int32_t k = 0; k < kc; k++) dst[(size_t)k * MR + r] = (float)((double)src[k] * sc);
          } else {
            for (int32_t k = 0; k < kc; k++) dst[(size_t)k * MR + r] = src[k];
          }
        }
      }
    }
  }
}


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
typedef enum { SPLIT_GROUPS, SPLIT_CHANNELS, SPLIT_PIXELS, SPLIT_WINO_CHANNELS, SPLIT_WINO_TILES, SPLIT_PADDED } conv_split;

static conv_split split_of(const rk_conv2d_shape *s, int32_t nthreads) {
  if (use_winograd(s)) {
    const wino_plan w = plan_wino(s);
    return wino_split_over_channels(&w, (int64_t)s->batch * w.panels, nthreads) ? SPLIT_WINO_CHANNELS : SPLIT_WINO_TILES;
  }
  if (use_padded(s)) return SPLIT_PADDED;
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
  if (split == SPLIT_PADDED) {
    padded_conv(&t, tid, nthreads);
    return;
  }
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
  /* This thread's panels of each (image, group) it reaches: [panel0, panel1). */
  panel_runs runs = panel_runs_of(images, p.pixel_panels, tid, nthreads);
  int32_t image, panel0, panel1;
  while (next_panel_run(&runs, &image, &panel0, &panel1))
    conv_region(&t, image / s->groups, image % s->groups, image % s->groups + 1, 0, p.group_out, panel0 * NR,
                min_i32(p.out_plane, panel1 * NR));
}
