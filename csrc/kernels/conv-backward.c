/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the convolution's gradients, w.r.t. its input and its weight, as packed GEMMs on the forward's micro-kernels. */

/* ---------------------------------------------------------------------------------------
 * Per image n and group g, with W_g the group's weight as a (O/groups) × K matrix,
 * K = C/groups·kh·kw, and x̂ the im2col matrix of the forward (K × OH·OW):
 *   input gradient:  cols (K × OH·OW) = W_gᵀ · dy_g, then col2im adds each column entry back
 *                    onto the input pixel it was read from (a 1×1 stride-1 unpadded
 *                    convolution writes W_gᵀ · dy_g straight into dx: x̂ is x);
 *   weight gradient: dW_g (O/groups × K) = Σ_n dy_g · x̂ᵀ, the pixels as the GEMM's depth.
 * ------------------------------------------------------------------------------------- */

/* Adds rows [r0, r1) of cols (row stride ldc; column q is output pixel p0 + q, `pixels` of
   them) back onto the input pixels im2col read them from: the adjoint of im2col. dxg is the
   group's first input plane; row r is (channel, ky, kx) = (r / taps, r % taps / kw, r % kw). */
static void col2im_add(const rk_conv2d_shape *s, const conv_plan *p, const float *cols, size_t ldc, int32_t r0,
                       int32_t r1, int32_t p0, int32_t pixels, float *dxg) {
  const int32_t sw = s->stride_w;
  for (int32_t r = r0; r < r1; r++) {
    const int32_t tap = r % p->taps, ky = tap / s->kernel_w, kx = tap % s->kernel_w;
    const float *src = cols + (size_t)(r - r0) * ldc;
    float *plane = dxg + (size_t)(r / p->taps) * p->in_plane;
    int32_t q = 0, oy = p0 / s->out_w, ox = p0 % s->out_w;
    while (q < pixels) {
      /* The pixels of one output row: lanes [q, q + count) are (oy, ox .. ox + count - 1). */
      const int32_t count = min_i32(pixels - q, s->out_w - ox);
      const int32_t iy = oy * s->stride_h - s->pad_h + ky * s->dilation_h;
      if (iy >= 0 && iy < s->in_h) {
        /* Lane l reads ix = ix0 + l·sw; inside the input for l in [lo, hi). */
        const int32_t ix0 = ox * sw - s->pad_w + kx * s->dilation_w;
        const int32_t lo = min_i32(count, ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw);
        const int32_t hi = max_i32(lo, min_i32(count, ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / sw + 1));
        float *d = plane + (size_t)iy * s->in_w;
        const float *v = src + q;
        if (sw == 1) {
          for (int32_t l = lo; l < hi; l++) d[ix0 + l] += v[l];
        } else {
          for (int32_t l = lo; l < hi; l++) d[ix0 + l * sw] += v[l];
        }
      }
      q += count, ox = 0, oy++;
    }
  }
}

/* Columns per chunk: equal chunks of whole NR panels, none over NC. */
static int32_t pixel_chunk(int32_t pixels) {
  return ceil_div(ceil_div(pixels, ceil_div(pixels, NC)), NR) * NR;
}

/* Packs B for the input gradient: rows [0, kc) of dy_g (row stride OH·OW, consecutive images
   image_stride apart, dyg at the first image of the range), columns [col, col + cols) of the
   images' pixels laid end to end (column n·OH·OW + p is pixel p of image n), into NR-column
   panels [panel][k][NR], zero past the last column. */
static void pack_dy_columns(const float *dyg, size_t image_stride, int32_t out_plane, int32_t kc, int32_t col,
                            int32_t cols, float *dst) {
  const size_t panel_step = (size_t)kc * NR;
  for (int32_t k = 0; k < kc; k++) {
    float *d = dst + (size_t)k * NR;
    int32_t lane = 0, c = col;
    while (lane < cols) {
      /* A run of one image's row: pixels [q, q + count) to lanes [lane, lane + count). */
      const int32_t n = c / out_plane, q = c % out_plane;
      const int32_t count = min_i32(cols - lane, out_plane - q);
      const float *src = dyg + (size_t)n * image_stride + (size_t)k * out_plane + q;
      for (int32_t i = 0; i < count;) {
        const int32_t l = lane + i, run = min_i32(count - i, NR - l % NR);
        float *dl = d + (size_t)(l / NR) * panel_step + l % NR;
        for (int32_t j = 0; j < run; j++) dl[j] = src[i + j];
        i += run;
      }
      lane += count, c += count;
    }
    for (int32_t l = cols; l < ceil_div(cols, NR) * NR; l++) d[(size_t)(l / NR) * panel_step + l % NR] = 0.0f;
  }
}

/* Input channels [c0, c1) of group g, images [n0, n1): see conv2d_backward_input. */
static void input_gradient_block(const rk_conv2d_shape *s, const conv_plan *p, const float *dy, const float *weight,
                                 float *dx, int32_t g, int32_t c0, int32_t c1, int32_t n0, int32_t n1, float *scratch) {
  float *a_block = scratch, *b_block = scratch + GEMM_A_FLOATS, *c_block = b_block + GEMM_B_FLOATS;
  const int32_t r0 = c0 * p->taps, r1 = c1 * p->taps;
  const size_t in_image = (size_t)s->in_channels * p->in_plane, out_image = (size_t)s->out_channels * p->out_plane;
  float *dxg = dx + (size_t)n0 * in_image + (size_t)g * p->group_in * p->in_plane;
  const float *dyg = dy + (size_t)n0 * out_image + (size_t)g * p->group_out * p->out_plane;
  const float *wg = weight + (size_t)g * p->group_out * p->k;
  /* Planes smaller than a chunk: the images' pixels end to end as the GEMM's columns, so that
     panels are full and each packed A block serves NC columns, not one small plane. */
  const int32_t flatten = p->out_plane < NC;
  const int32_t total = (n1 - n0) * p->out_plane, span = flatten ? total : p->out_plane;
  /* A 1×1 stride-1 unpadded convolution writes W_gᵀ · dy_g straight into dx (one image per
     chunk); everything else goes through the C block and col2im, onto zeroed planes. */
  const int32_t straight = p->direct && !flatten;
  if (!straight)
    for (int32_t n = 0; n < n1 - n0; n++)
      for (size_t i = (size_t)c0 * p->in_plane; i < (size_t)c1 * p->in_plane; i++) dxg[(size_t)n * in_image + i] = 0.0f;
  const int32_t chunk = pixel_chunk(span);
  for (int32_t base = 0; base < total; base += span) {
    for (int32_t col = base; col < base + span; col += chunk) {
      const int32_t nc = min_i32(chunk, base + span - col);
      for (int32_t mc = r0; mc < r1; mc += MC) {
        const int32_t rows = min_i32(MC, r1 - mc);
        for (int32_t kb = 0; kb < p->group_out; kb += KC) {
          const int32_t kc = min_i32(KC, p->group_out - kb);
          /* A = W_gᵀ: A(i, k) = w[kb + k][mc + i], MR consecutive floats of a weight row. */
          pack_a(wg + (size_t)kb * p->k + mc, 1, (size_t)p->k, rows, kc, a_block);
          /* B = dy_g rows [kb, kb + kc), columns [col, col + nc). */
          pack_dy_columns(dyg + (size_t)kb * p->out_plane, out_image, p->out_plane, kc, col, nc, b_block);
          if (straight) {
            float *c = dxg + (size_t)(col / p->out_plane) * in_image + (size_t)mc * p->in_plane + col % p->out_plane;
            gemm_packed(rows, nc, kc, a_block, b_block, c, (size_t)p->in_plane, kb > 0);
          } else {
            gemm_packed(rows, nc, kc, a_block, b_block, c_block, NC, kb > 0);
          }
        }
        if (straight) continue;
        /* col2im, image by image of the chunk. */
        for (int32_t c = col; c < col + nc;) {
          const int32_t n = c / p->out_plane, q = c % p->out_plane;
          const int32_t count = min_i32(col + nc - c, p->out_plane - q);
          col2im_add(s, p, c_block + (c - col), NC, mc, mc + rows, q, count, dxg + (size_t)n * in_image);
          c += count;
        }
      }
    }
  }
}

/* Threads split (group, block of input channels, image) units, images innermost, and take
   whole runs of them: each unit's dx planes are written by its thread alone (col2im of a
   channel's rows lands in that channel's plane), so threads never race however windows
   overlap, and a thread's images of one block share its packed weight panels. Whole channels
   while there are enough images to share; a small batch also cuts channels, into up to 4
   blocks a thread. */
void RK_API(conv2d_backward_input)(const rk_conv2d_shape *s, const float *dy, const float *weight, float *dx,
                                   float *scratch, int32_t tid, int32_t nthreads) {
  const conv_plan p = plan_conv(s);
  const int64_t images = (int64_t)s->batch * s->groups;
  const int32_t blocks = nthreads == 1 ? 1 : (int32_t)min_i32(p.group_in, (int32_t)((4 * (int64_t)nthreads + images - 1) / images));
  int64_t u0, u1;
  split_range(images * blocks, tid, nthreads, 1, &u0, &u1);
  while (u0 < u1) {
    /* Units ((g·blocks + block)·batch + n): this thread's images [n0, n1) of one block. */
    const int64_t run = u0 / s->batch;
    const int32_t g = (int32_t)(run / blocks), block = (int32_t)(run % blocks), n0 = (int32_t)(u0 % s->batch);
    const int32_t n1 = (int32_t)(u1 - run * s->batch < s->batch ? u1 - run * s->batch : s->batch);
    const int32_t c0 = (int32_t)((int64_t)p.group_in * block / blocks), c1 = (int32_t)((int64_t)p.group_in * (block + 1) / blocks);
    if (c0 < c1) input_gradient_block(s, &p, dy, weight, dx, g, c0, c1, n0, n1, scratch);
    u0 += n1 - n0;
  }
}

/* Packs B = x̂ᵀ for the weight gradient: B(k, j) = x̂[q0 + j][p0 + k], output pixels
   [p0, p0 + kc) of one image and group (xg its first input plane) by im2col rows
   [q0, q0 + cols), into NR-column panels [panel][k][NR], zero past the last column. One im2col
   row at a time, reading the input along its rows; the panel's rows are in L1/L2. */
static void pack_im2col_transposed(const rk_conv2d_shape *s, const conv_plan *p, const float *xg, int32_t p0,
                                   int32_t kc, int32_t q0, int32_t cols, float *dst) {
  const int32_t sw = s->stride_w;
  for (int32_t j = 0; j < ceil_div(cols, NR) * NR; j++) {
    float *d = dst + (size_t)(j / NR) * kc * NR + j % NR;
    if (j >= cols) {
      for (int32_t k = 0; k < kc; k++) d[(size_t)k * NR] = 0.0f;
      continue;
    }
    const int32_t row = q0 + j, tap = row % p->taps, ky = tap / s->kernel_w, kx = tap % s->kernel_w;
    const float *plane = xg + (size_t)(row / p->taps) * p->in_plane;
    int32_t q = 0, oy = p0 / s->out_w, ox = p0 % s->out_w;
    while (q < kc) {
      const int32_t count = min_i32(kc - q, s->out_w - ox);
      const int32_t iy = oy * s->stride_h - s->pad_h + ky * s->dilation_h;
      float *dq = d + (size_t)q * NR;
      if (iy < 0 || iy >= s->in_h) {
        for (int32_t l = 0; l < count; l++) dq[(size_t)l * NR] = 0.0f;
      } else {
        const int32_t ix0 = ox * sw - s->pad_w + kx * s->dilation_w;
        const int32_t lo = min_i32(count, ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw);
        const int32_t hi = max_i32(lo, min_i32(count, ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / sw + 1));
        const float *src = plane + (size_t)iy * s->in_w;
        for (int32_t l = 0; l < lo; l++) dq[(size_t)l * NR] = 0.0f;
        for (int32_t l = lo; l < hi; l++) dq[(size_t)l * NR] = src[ix0 + l * sw];
        for (int32_t l = hi; l < count; l++) dq[(size_t)l * NR] = 0.0f;
      }
      q += count, ox = 0, oy++;
    }
  }
}

/* Copies rows [m0, m0 + rows) of x̂ (one image and group, xg its first input plane), output
   pixels [p0, p0 + kc), into dst as rows KC floats apart: contiguous runs of input rows and
   zeros, what the f32_gemm_arows tiles read as A. */
static void im2col_rows(const rk_conv2d_shape *s, const conv_plan *p, const float *xg, int32_t p0, int32_t kc,
                        int32_t m0, int32_t rows, float *dst) {
  const int32_t sw = s->stride_w;
  for (int32_t r = 0; r < rows; r++) {
    const int32_t row = m0 + r, tap = row % p->taps, ky = tap / s->kernel_w, kx = tap % s->kernel_w;
    const float *plane = xg + (size_t)(row / p->taps) * p->in_plane;
    float *d = dst + (size_t)r * KC;
    int32_t q = 0, oy = p0 / s->out_w, ox = p0 % s->out_w;
    while (q < kc) {
      const int32_t count = min_i32(kc - q, s->out_w - ox);
      const int32_t iy = oy * s->stride_h - s->pad_h + ky * s->dilation_h;
      float *dq = d + q;
      if (iy < 0 || iy >= s->in_h) {
        for (int32_t l = 0; l < count; l++) dq[l] = 0.0f;
      } else {
        const int32_t ix0 = ox * sw - s->pad_w + kx * s->dilation_w;
        const int32_t lo = min_i32(count, ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw);
        const int32_t hi = max_i32(lo, min_i32(count, ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / sw + 1));
        for (int32_t l = 0; l < lo; l++) dq[l] = 0.0f;
        copy_strided(dq + lo, plane + (size_t)iy * s->in_w + ix0 + lo * sw, hi - lo, sw);
        for (int32_t l = hi; l < count; l++) dq[l] = 0.0f;
      }
      q += count, ox = 0, oy++;
    }
  }
}

/* The weight gradient's GEMM has the pixels as its depth, the contiguous axis of both dy and
   x̂, so one operand must be transposed into the micro-kernel's panels, element by element:
   whichever has fewer rows per pixel. Usually dy (O/groups rows against K = C/groups·kh·kw):
   then C = dWᵀ (K × O/groups), A = x̂ copied as rows (f32_gemm_arows), B = dyᵀ panels, and the
   result is transposed into dW once at the end. Where O/groups > K (1×1 convolutions that
   widen), C = dW, A = dy panels and B = x̂ᵀ panels. */
static int32_t weight_gradient_by_rows(const conv_plan *p) { return p->group_out <= p->k; }

/* dWᵀ rows a thread accumulates at once (its block of scratch: at most WGRAD_T_FLOATS). */
#define WGRAD_T_FLOATS ((size_t)256 * 1024)
static int32_t wgrad_chunk_rows(const conv_plan *p) {
  const int32_t rows = (int32_t)(WGRAD_T_FLOATS / (size_t)p->group_out) / MR * MR;
  return min_i32(max_i32(rows, MR), ceil_div(p->k, MR) * MR);
}

/* t (rows × go, row-major) [+]= A (rows of x̂, KC floats apart, kc deep) · B (dyᵀ in NR-column
   panels, kc deep): one K block of dWᵀ on the arows tiles. */
static void wgrad_block(int32_t rows, int32_t go, int32_t kc, const float *x_block, const float *b_block, float *t,
                        int32_t accumulate) {
  for (int32_t j = 0; j < go; j += NR) {
    const int32_t nr = min_i32(NR, go - j);
    const float *bj = b_block + (size_t)(j / NR) * kc * NR;
    for (int32_t i = 0; i < rows; i += MR)
      gemm_tile_arows(min_i32(MR, rows - i), nr, (size_t)kc, x_block + (size_t)i * KC, bj, t + (size_t)i * go + j,
                      (size_t)go, accumulate);
  }
}

/* dw[o·ldw + r] = t[r·go + o]: dWᵀ rows [0, rows) stored into dW's columns. */
static void store_transposed(const float *t, int32_t rows, int32_t go, float *dw, size_t ldw) {
  for (int32_t o = 0; o < go; o++)
    for (int32_t r = 0; r < rows; r++) dw[(size_t)o * ldw + r] = t[(size_t)r * go + o];
}

/* The columns of B the tiles read for `cols` columns: whole NR panels, and a last panel of
   nr ≤ NR_HALF columns is read by the narrow tiles, NR_HALF lanes wide (the lanes past that
   are never read: packing skips them, half of the work where O/groups = 16 on AVX-512). */
static int32_t tile_columns(int32_t cols) {
  const int32_t full = cols / NR * NR, rest = cols - full;
  return full + (rest == 0 ? 0 : rest <= NR_HALF ? NR_HALF : NR);
}

/* The weight gradient on padded planes (conv-padded.c) where the im2col rows would be runs of
   one short input row each: stride 1, one group, planes no more than a third larger padded
   (28×28 → 30×30 computes 15% more, 14×14 → 16×16 31%; a 7×7 plane's 9×9 would be 65%, and
   keeps im2col). Images are laid end to end in a block, each channel's padded planes one run:
   row (c, ky, kx) of x̂ at wide pixel f is that run at f + ky·dh·Wp + kx·dw, a straight copy
   (no edges to find), and dy's columns ox ≥ OW and rows oy ≥ OH are zeros in B. */
#define WGRAD_PADDED_FLOATS ((size_t)512 * 1024) /* a block's padded planes, all channels */

static int32_t wgrad_padded(const rk_conv2d_shape *s) {
  if (s->stride_h != 1 || s->stride_w != 1 || s->groups != 1) return 0;
  if (s->kernel_h == 1 && s->kernel_w == 1 && s->pad_h == 0 && s->pad_w == 0) return 0;
  if (s->out_h <= 0 || s->out_w <= 0) return 0;
  const padded_plan d = plan_padded(s);
  const size_t wide = (size_t)d.hp * d.wp, valid = (size_t)s->out_h * s->out_w;
  return 3 * wide <= 4 * valid && (size_t)s->in_channels * (wide + (size_t)d.reach) <= PADDED_MAX_FLOATS;
}

/* Images per block and floats per channel run (the block's planes, then the reach the last
   wide pixels read past them). */
static int32_t wgrad_block_images(const rk_conv2d_shape *s, const padded_plan *d) {
  const size_t wide = (size_t)d->hp * d->wp;
  const int32_t images = (int32_t)(WGRAD_PADDED_FLOATS / ((size_t)s->in_channels * wide));
  return max_i32(1, min_i32(images, s->batch));
}
static size_t wgrad_channel_run(const rk_conv2d_shape *s, const padded_plan *d) {
  return round_line((size_t)wgrad_block_images(s, d) * d->hp * d->wp + (size_t)d->reach);
}

/* B = dyᵀ over wide pixels [f0, f0 + kc) of the block starting at image n0: B(k, o) =
   dy[n][o][oy][ox] for wide pixel (n − n0)·Hp·Wp + oy·Wp + ox, zero where ox ≥ OW or
   oy ≥ OH; NR-column panels [panel][k][NR], zero past the last column. */
static void pack_dy_wide(const rk_conv2d_shape *s, const conv_plan *p, const padded_plan *d, const float *dy,
                         int32_t n0, int32_t f0, int32_t kc, float *dst) {
  const int32_t go = p->group_out, columns = tile_columns(go), wide = d->hp * d->wp;
  const size_t out_image = (size_t)s->out_channels * p->out_plane;
  for (int32_t lane = 0; lane < kc;) {
    const int32_t f = f0 + lane, n = n0 + f / wide, q = f % wide, oy = q / d->wp, ox = q % d->wp;
    const int32_t count = min_i32(kc - lane, d->wp - ox);
    const int32_t valid = oy < s->out_h && ox < s->out_w ? min_i32(count, s->out_w - ox) : 0;
    const float *src0 = dy + (size_t)n * out_image + (size_t)oy * s->out_w + ox;
    for (int32_t o = 0; o < columns; o++) {
      float *dl = dst + (size_t)(o / NR) * kc * NR + (size_t)lane * NR + o % NR;
      const float *src = src0 + (size_t)o * p->out_plane;
      int32_t k = 0;
      if (o < go)
        for (; k < valid; k++) dl[(size_t)k * NR] = src[k];
      for (; k < count; k++) dl[(size_t)k * NR] = 0.0f;
    }
    lane += count;
  }
}

static size_t wgrad_padded_scratch_floats(const rk_conv2d_shape *s, const conv_plan *p) {
  const padded_plan d = plan_padded(s);
  return (size_t)MC * KC + round_line((size_t)KC * ceil_div(p->group_out, NR) * NR) +
         round_line((size_t)wgrad_chunk_rows(p) * p->group_out) + (size_t)s->in_channels * wgrad_channel_run(s, &d);
}

/* dWᵀ rows [t0, t0 + trows) (see weight_gradient_rows), on padded planes. */
static void weight_gradient_padded(const rk_conv2d_shape *s, const conv_plan *p, const float *x, const float *dy,
                                   float *dw, int32_t t0, int32_t trows, float *scratch) {
  const padded_plan d = plan_padded(s);
  const int32_t go = p->group_out, wide = d.hp * d.wp;
  float *x_block = scratch, *b_block = scratch + (size_t)MC * KC;
  float *t = b_block + round_line((size_t)KC * ceil_div(go, NR) * NR);
  float *xp = t + round_line((size_t)wgrad_chunk_rows(p) * go);
  const int32_t block = wgrad_block_images(s, &d);
  const size_t run = wgrad_channel_run(s, &d);
  const int32_t c_lo = t0 / p->taps, c_hi = (t0 + trows - 1) / p->taps + 1; /* the channels these rows read */
  for (int32_t n0 = 0; n0 < s->batch; n0 += block) {
    const int32_t images = min_i32(block, s->batch - n0), total = images * wide;
    for (int32_t i = 0; i < images; i++)
      padded_fill(s, &d, x + (size_t)(n0 + i) * s->in_channels * p->in_plane, c_lo, c_hi, 0, d.hp, xp + (size_t)i * wide, run);
    for (int32_t c = c_lo; c < c_hi; c++)
      for (size_t i = (size_t)total; i < (size_t)total + (size_t)d.reach; i++) xp[(size_t)c * run + i] = 0.0f;
    for (int32_t f0 = 0; f0 < total; f0 += KC) {
      const int32_t kc = min_i32(KC, total - f0);
      pack_dy_wide(s, p, &d, dy, n0, f0, kc, b_block);
      for (int32_t mc = 0; mc < trows; mc += MC) {
        const int32_t rows = min_i32(MC, trows - mc);
        for (int32_t r = 0; r < rows; r++) {
          const int32_t m = t0 + mc + r, c = m / p->taps, tap = m % p->taps;
          const float *src = xp + (size_t)c * run + f0 + (size_t)(tap / s->kernel_w) * s->dilation_h * d.wp +
                             (size_t)(tap % s->kernel_w) * s->dilation_w;
          __builtin_memcpy(x_block + (size_t)r * KC, src, (size_t)kc * sizeof(float));
        }
        wgrad_block(rows, go, kc, x_block, b_block, t + (size_t)mc * go, n0 > 0 || f0 > 0);
      }
    }
  }
  store_transposed(t, trows, go, dw + t0, (size_t)p->k);
}

size_t RK_API(conv2d_backward_weight_scratch_floats)(const rk_conv2d_shape *s) {
  const conv_plan p = plan_conv(s);
  if (!weight_gradient_by_rows(&p)) return GEMM_A_FLOATS + GEMM_B_FLOATS;
  if (wgrad_padded(s)) return wgrad_padded_scratch_floats(s, &p);
  const size_t b_floats = round_line((size_t)KC * ceil_div(p.group_out, NR) * NR);
  return (size_t)MC * KC + b_floats + round_line((size_t)wgrad_chunk_rows(&p) * p.group_out);
}

/* B = dyᵀ for the weight gradient: B(k, o) = dy_g[o] at pixel f0 + k of the batch's pixels
   laid end to end (pixel q of image n is f = n·OH·OW + q), o < O/groups, into NR-column
   panels [panel][k][NR] (panel stride kc·NR), zero past the last column. */
static void pack_dy_transposed(const rk_conv2d_shape *s, const conv_plan *p, const float *dy, int32_t g, int64_t f0,
                               int32_t kc, float *dst) {
  const int32_t go = p->group_out, columns = tile_columns(go);
  const size_t out_image = (size_t)s->out_channels * p->out_plane;
  for (int32_t lane = 0; lane < kc;) {
    const int64_t f = f0 + lane;
    const int32_t n = (int32_t)(f / p->out_plane), q = (int32_t)(f % p->out_plane);
    const int32_t count = min_i32(kc - lane, p->out_plane - q);
    const float *dyg = dy + (size_t)n * out_image + (size_t)g * go * p->out_plane + q;
    for (int32_t o = 0; o < columns; o++) {
      float *d = dst + (size_t)(o / NR) * kc * NR + (size_t)lane * NR + o % NR;
      if (o >= go) {
        for (int32_t k = 0; k < count; k++) d[(size_t)k * NR] = 0.0f;
        continue;
      }
      const float *src = dyg + (size_t)o * p->out_plane;
      for (int32_t k = 0; k < count; k++) d[(size_t)k * NR] = src[k];
    }
    lane += count;
  }
}

/* dWᵀ rows [t0, t0 + trows) of group g (see weight_gradient_by_rows), summed over the batch in
   t (trows × O/groups), then stored transposed into dw. The GEMM's depth is the batch's pixels
   laid end to end, KC at a time across image boundaries: a 7×7 plane is 49 pixels, too short a
   depth for one pass of the micro-kernel over its tile. */
static void weight_gradient_rows(const rk_conv2d_shape *s, const conv_plan *p, const float *x, const float *dy,
                                 float *dw, int32_t g, int32_t t0, int32_t trows, float *scratch) {
  const int32_t go = p->group_out;
  float *x_block = scratch, *b_block = scratch + (size_t)MC * KC;
  float *t = b_block + round_line((size_t)KC * ceil_div(go, NR) * NR);
  const int64_t total = (int64_t)s->batch * p->out_plane;
  for (int64_t f0 = 0; f0 < total; f0 += KC) {
    const int32_t kc = (int32_t)(total - f0 < KC ? total - f0 : KC);
    pack_dy_transposed(s, p, dy, g, f0, kc, b_block);
    for (int32_t mc = 0; mc < trows; mc += MC) {
      const int32_t rows = min_i32(MC, trows - mc);
      /* A = x̂ rows [t0 + mc, + rows), the block's pixels image by image. */
      for (int32_t lane = 0; lane < kc;) {
        const int64_t f = f0 + lane;
        const int32_t n = (int32_t)(f / p->out_plane), q = (int32_t)(f % p->out_plane);
        const int32_t count = min_i32(kc - lane, p->out_plane - q);
        const float *xg = x + ((size_t)n * s->in_channels + (size_t)g * p->group_in) * p->in_plane;
        im2col_rows(s, p, xg, q, count, t0 + mc, rows, x_block + lane);
        lane += count;
      }
      wgrad_block(rows, go, kc, x_block, b_block, t + (size_t)mc * go, f0 > 0);
    }
  }
  store_transposed(t, trows, go, dw + (size_t)g * go * p->k + t0, (size_t)p->k);
}

/* dW columns [q0, q1) of group g (see weight_gradient_by_rows): C = dW, A = dy panels,
   B = x̂ᵀ panels. */
static void weight_gradient_columns(const rk_conv2d_shape *s, const conv_plan *p, const float *x, const float *dy,
                                    float *dw, int32_t g, int32_t q0, int32_t q1, float *scratch) {
  float *a_block = scratch, *b_block = scratch + GEMM_A_FLOATS;
  float *dwg = dw + (size_t)g * p->group_out * p->k;
  for (int32_t qc = q0; qc < q1; qc += NC) {
    const int32_t cols = min_i32(NC, q1 - qc);
    int32_t first = 1;
    for (int32_t n = 0; n < s->batch; n++) {
      const float *xg = x + ((size_t)n * s->in_channels + (size_t)g * p->group_in) * p->in_plane;
      const float *dyg = dy + ((size_t)n * s->out_channels + (size_t)g * p->group_out) * p->out_plane;
      for (int32_t pk = 0; pk < p->out_plane; pk += KC) {
        const int32_t kc = min_i32(KC, p->out_plane - pk);
        pack_im2col_transposed(s, p, xg, pk, kc, qc, cols, b_block);
        for (int32_t mc = 0; mc < p->group_out; mc += MC) {
          const int32_t rows = min_i32(MC, p->group_out - mc);
          /* A = dy_g rows [mc, mc + rows), pixels [pk, pk + kc). */
          pack_a(dyg + (size_t)mc * p->out_plane + pk, (size_t)p->out_plane, 1, rows, kc, a_block);
          gemm_packed(rows, cols, kc, a_block, b_block, dwg + (size_t)mc * p->k + qc, (size_t)p->k, !first);
        }
        first = 0;
      }
    }
  }
}

/* Threads split (group, panel of im2col rows) units, im2col row m being the weight gradient's
   column (input channel, ky, kx): each thread owns whole columns of dW, summed over the batch
   by that thread alone (never a race, no reduction afterwards), and unfolds only the input it
   multiplies; what every thread repeats is dy's share (packed or transposed). Panels are MR
   rows when dWᵀ is computed (weight_gradient_by_rows), NR columns otherwise. */
void RK_API(conv2d_backward_weight)(const rk_conv2d_shape *s, const float *x, const float *dy, float *dw,
                                    float *scratch, int32_t tid, int32_t nthreads) {
  const conv_plan p = plan_conv(s);
  const int32_t by_rows = weight_gradient_by_rows(&p), padded = wgrad_padded(s);
  const int32_t width = by_rows ? MR : NR;
  const int32_t panels = ceil_div(p.k, width);
  const int32_t chunk = by_rows ? wgrad_chunk_rows(&p) : p.k;
  int64_t u0, u1;
  split_range((int64_t)s->groups * panels, tid, nthreads, 1, &u0, &u1);
  while (u0 < u1) {
    /* This thread's rows or columns [q0, q1) of group g. */
    const int32_t g = (int32_t)(u0 / panels), j0 = (int32_t)(u0 % panels);
    const int32_t j1 = (int32_t)(u1 - (int64_t)g * panels < panels ? u1 - (int64_t)g * panels : panels);
    const int32_t q0 = j0 * width, q1 = min_i32(p.k, j1 * width);
    for (int32_t q = q0; q < q1; q += chunk) {
      if (by_rows && padded)
        weight_gradient_padded(s, &p, x, dy, dw, q, min_i32(chunk, q1 - q), scratch);
      else if (by_rows)
        weight_gradient_rows(s, &p, x, dy, dw, g, q, min_i32(chunk, q1 - q), scratch);
      else
        weight_gradient_columns(s, &p, x, dy, dw, g, q, q1, scratch);
    }
    u0 += j1 - j0;
  }
}
