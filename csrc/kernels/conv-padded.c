/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): stride-1 convolutions on zero-bordered copies of the input planes, read in place by the indirect micro-kernel. */

/* ---------------------------------------------------------------------------------------
 * Stride-1 convolutions of one group (3×3 and the like, any padding, any dilation) whose
 * channels are too few for Winograd: each input plane is copied once into a plane with its
 * zero border, Wp = W + 2·pad_w wide, so that output pixel (oy, ox), at column q = oy·Wp + ox
 * of a "wide" output plane, reads tap (ky, kx) at q + ky·dh·Wp + kx·dw. Every B row of the
 * GEMM is then NR consecutive floats of the padded plane, whatever the plane's width: the
 * indirect micro-kernel reads them in place (no im2col copies, no run planning), and the
 * columns ox ≥ OW of each wide row (Wp − OW of them) are computed and dropped when the tile
 * is stored (2/30 of the work at 28×28, 2/16 at 14×14, 2/9 at 7×7).
 * That is cheaper than im2col at every plane size, and than Winograd F(2, 3) where its 16
 * GEMMs have depth C = 16 to 64 (CIFAR ResNets, the first stages of training-size batches):
 * measured on AVX-512 at batch 128, 16 channels at 28×28 1.9×, 32 at 14×14 1.8×, 64 at 7×7
 * 1.5× the speed of the previous path.
 * ------------------------------------------------------------------------------------- */

/* The padded copy of one image's channels is scratch, per thread: planes larger than this
   keep the im2col path. */
#define PADDED_MAX_FLOATS ((size_t)4 << 20)

typedef struct {
  int32_t wp, hp;   /* padded plane: W + 2·pad_w wide, H + 2·pad_h high */
  int32_t cols;     /* columns of the wide output plane: OH·Wp */
  int32_t panels;   /* ceil(cols / NR) */
  int32_t reach;    /* offset of the farthest tap: (kh − 1)·dh·Wp + (kw − 1)·dw */
  size_t plane;     /* floats per padded plane: Hp·Wp, then zeros the last panel's taps read past it */
} padded_plan;

static padded_plan plan_padded(const rk_conv2d_shape *s) {
  padded_plan d;
  d.wp = s->in_w + 2 * s->pad_w;
  d.hp = s->in_h + 2 * s->pad_h;
  d.cols = s->out_h * d.wp;
  d.panels = ceil_div(d.cols, NR);
  d.reach = (s->kernel_h - 1) * s->dilation_h * d.wp + (s->kernel_w - 1) * s->dilation_w;
  /* The last panel's lanes end before panels·NR ≤ cols + NR − 1, its farthest tap reads
     reach past that: up to Hp·Wp + NR + (kw − 1)·dw (out_h + (kh − 1)·dh = Hp). */
  d.plane = round_line((size_t)d.panels * NR + (size_t)d.reach);
  return d;
}

static int32_t use_padded(const rk_conv2d_shape *s) {
  if (s->stride_h != 1 || s->stride_w != 1 || s->groups != 1 || use_winograd(s)) return 0;
  if (s->kernel_h == 1 && s->kernel_w == 1 && s->pad_h == 0 && s->pad_w == 0) return 0; /* direct: B is x itself */
  if (s->out_h <= 0 || s->out_w <= 0) return 0;
  const padded_plan d = plan_padded(s);
  return (size_t)s->in_channels * d.plane <= PADDED_MAX_FLOATS;
}

/* One thread's scratch: the padded planes (C × plane), the wide output block (O rows × NC,
   summed over the K blocks before it is stored), and a B row pointer per (K row, panel). */
static size_t padded_scratch_floats(const rk_conv2d_shape *s, const conv_plan *p) {
  const padded_plan d = plan_padded(s);
  const size_t pointers = (size_t)p->block_channels * p->taps * (NC / NR);
  const size_t pointer_floats = pointers * ((sizeof(const float *) + sizeof(float) - 1) / sizeof(float));
  return (size_t)s->in_channels * d.plane + round_line((size_t)p->group_out * NC) + round_line(pointer_floats);
}

/* Rows [r0, r1) of the padded planes of channels [c0, c1) of image x (its first input plane):
   channel c's plane at xp + c·stride. */
static void padded_fill(const rk_conv2d_shape *s, const padded_plan *d, const float *x, int32_t c0, int32_t c1,
                        int32_t r0, int32_t r1, float *xp, size_t stride) {
  const size_t in_plane = (size_t)s->in_h * s->in_w;
  for (int32_t c = c0; c < c1; c++) {
    float *plane = xp + (size_t)c * stride;
    const float *src = x + (size_t)c * in_plane;
    for (int32_t r = r0; r < r1; r++) {
      float *row = plane + (size_t)r * d->wp;
      const int32_t iy = r - s->pad_h;
      if (iy < 0 || iy >= s->in_h) {
        for (int32_t i = 0; i < d->wp; i++) row[i] = 0.0f;
        continue;
      }
      for (int32_t i = 0; i < s->pad_w; i++) row[i] = 0.0f;
      const float *in = src + (size_t)iy * s->in_w;
      for (int32_t i = 0; i < s->in_w; i++) row[s->pad_w + i] = in[i];
      for (int32_t i = s->pad_w + s->in_w; i < d->wp; i++) row[i] = 0.0f;
    }
  }
}

/* Stores rows [0, rows) of the wide block c (row stride NC; column j is wide column q0 + j)
   into y (image n's first plane), dropping the columns past OW, with the epilogue. */
static void padded_store(const rk_conv2d_shape *s, const padded_plan *d, const float *c, int32_t rows, int32_t q0,
                         int32_t cols, const float *bias, const float *residual, int32_t relu, float *y) {
  const size_t out_plane = (size_t)s->out_h * s->out_w;
  for (int32_t o = 0; o < rows; o++) {
    const float *src = c + (size_t)o * NC;
    float *yo = y + (size_t)o * out_plane;
    const float *ro = residual ? residual + (size_t)o * out_plane : 0;
    const float b = bias ? bias[o] : 0.0f;
    for (int32_t q = q0; q < q0 + cols;) {
      const int32_t oy = q / d->wp, ox = q % d->wp;
      const int32_t count = min_i32(q0 + cols - q, d->wp - ox);
      const int32_t valid = ox < s->out_w ? min_i32(count, s->out_w - ox) : 0;
      const size_t at = (size_t)oy * s->out_w + ox;
      const float *v = src + (q - q0);
      float *dst = yo + at;
      if (ro) {
        const float *rr = ro + at;
        for (int32_t i = 0; i < valid; i++) {
          const float t = v[i] + b + rr[i];
          dst[i] = relu && t < 0.0f ? 0.0f : t;
        }
      } else {
        for (int32_t i = 0; i < valid; i++) {
          const float t = v[i] + b;
          /* t < 0 ? 0 : t keeps NaN, as the reference epilogue does. */
          dst[i] = relu && t < 0.0f ? 0.0f : t;
        }
      }
      q += count;
    }
  }
}

/* Wide columns [q0, q1) of image n (q0 a multiple of NR): fill the padded rows they read,
   then, per pixel chunk (NC) → K block (whole channels) → row block (MC) → panel (NR) → row
   panel (MR), the indirect micro-kernel into the wide block, stored once all K blocks are in. */
static void padded_region(const conv_args *t, const padded_plan *d, int32_t n, int32_t q0, int32_t q1) {
  const rk_conv2d_shape *s = t->s;
  const conv_plan *p = t->p;
  float *xp = t->scratch;
  float *cblock = xp + (size_t)s->in_channels * d->plane;
  const float **rows = (const float **)(cblock + round_line((size_t)p->group_out * NC));
  const size_t out_image = (size_t)s->out_channels * p->out_plane;
  const int32_t q1_read = q0 + ceil_div(q1 - q0, NR) * NR - 1 + d->reach; /* the last float read */
  const int32_t r1 = min_i32(d->hp, q1_read / d->wp + 1);
  padded_fill(s, d, t->x + (size_t)n * s->in_channels * p->in_plane, 0, s->in_channels, q0 / d->wp, r1, xp, d->plane);
  if (r1 == d->hp) /* the zeros the last panel's taps read past the planes */
    for (int32_t c = 0; c < s->in_channels; c++)
      for (size_t i = (size_t)d->hp * d->wp; i < d->plane; i++) xp[(size_t)c * d->plane + i] = 0.0f;
  float *y = t->y + (size_t)n * out_image;
  const float *residual = t->residual ? t->residual + (size_t)n * out_image : 0;
  const int32_t chunk = ceil_div(ceil_div(q1 - q0, ceil_div(q1 - q0, NC)), NR) * NR;
  for (int32_t pc = q0; pc < q1; pc += chunk) {
    const int32_t nc = min_i32(chunk, q1 - pc);
    for (int32_t c0 = 0; c0 < p->group_in; c0 += p->block_channels) {
      const int32_t c1 = min_i32(p->group_in, c0 + p->block_channels);
      const int32_t k0 = c0 * p->taps, kc = (c1 - c0) * p->taps;
      /* Row k = (c, ky, kx) of panel j: NR floats of plane c from column pc + j·NR + offset. */
      for (int32_t j = 0; j * NR < nc; j++) {
        const float **r = rows + (size_t)j * kc;
        for (int32_t c = c0; c < c1; c++) {
          const float *b = xp + (size_t)c * d->plane + pc + j * NR;
          for (int32_t ky = 0; ky < s->kernel_h; ky++)
            for (int32_t kx = 0; kx < s->kernel_w; kx++)
              *r++ = b + (size_t)ky * s->dilation_h * d->wp + (size_t)kx * s->dilation_w;
        }
      }
      for (int32_t mc = 0; mc < p->group_out; mc += MC) {
        const int32_t mc_end = min_i32(p->group_out, mc + MC);
        for (int32_t j = 0; j * NR < nc; j++) {
          const int32_t nr = min_i32(NR, nc - j * NR);
          for (int32_t i = mc; i < mc_end; i += MR)
            gemm_tile(min_i32(MR, mc_end - i), nr, (size_t)kc, t->packed + ((size_t)k0 * p->row_panels + (size_t)(i / MR) * kc) * MR,
                      0, NR, rows + (size_t)j * kc, cblock + (size_t)i * NC + (size_t)j * NR, NC, c0 > 0, 0);
        }
      }
    }
    padded_store(s, d, cblock, p->group_out, pc, nc, t->bias, residual, t->relu, y);
  }
}

/* Threads take runs of (image, panel) units, as the pixel split does: whole images at
   training-size batches, parts of one plane at batch 1 (each part fills only the padded rows
   it reads). */
static void padded_conv(const conv_args *t, int32_t tid, int32_t nthreads) {
  const padded_plan d = plan_padded(t->s);
  panel_runs runs = panel_runs_of(t->s->batch, d.panels, tid, nthreads);
  int32_t n, panel0, panel1;
  while (next_panel_run(&runs, &n, &panel0, &panel1))
    padded_region(t, &d, n, panel0 * NR, min_i32(d.cols, panel1 * NR));
}
