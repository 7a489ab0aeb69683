/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): packing B: im2col runs, phase rows, plane copies, and the scratch they use. */

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
  if (use_padded(s)) return padded_scratch_floats(s, &p);
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
