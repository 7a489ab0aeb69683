/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): pooling, linear and the elementwise ops. */

/* d[i] = max(d[i], s[i·stride]) for i < n, where NaN wins (and then stays), as torch's
   max pool; strides 1 and 2 get loops the compiler vectorises. */
static inline void max_into(float *restrict d, const float *restrict s, int32_t n, int32_t stride) {
#define RK_MAX_INTO(index)                         \
  for (int32_t i = 0; i < n; i++) {                \
    const float v = s[index];                      \
    d[i] = (v > d[i] || v != v) ? v : d[i];        \
  }
  if (stride == 1) {
    RK_MAX_INTO(i)
  } else if (stride == 2) {
    RK_MAX_INTO(2 * i)
  } else {
    RK_MAX_INTO(i * stride)
  }
#undef RK_MAX_INTO
}

/* Threads split output rows of all planes (N·C·OH), so even a 3-channel batch-1 input
   divides evenly; rows are disjoint in y. Each output row is computed in two passes: the
   running max of the window's input rows (ky order) into one row, then the running max over
   its taps along that row (kx order), one tap at a time across the whole output row: the
   columns whose tap falls inside the input form one range, found by arithmetic. Each input
   element is read once per output row instead of once per tap. The max is the same value
   as torch's (ky, kx) order gives, NaN included (NaN wins); only which of +0 and −0 wins a
   tie can differ. Rows wider than MAX_POOL_ROW take the taps one input row at a time. */
#define MAX_POOL_ROW 2048
static void max_pool_row(const float *xr, int32_t in_w, int32_t kernel_w, int32_t stride_w, int32_t pad_w,
                         int32_t dilation_w, int32_t out_w, float *yr) {
  if (stride_w == 2 && dilation_w == 1 && in_w <= MAX_POOL_ROW) {
    /* Column stride 2 (ResNet's 3×3/2): split the row into its even and odd columns once;
       each tap then reads one of them contiguously (kx/2 in) instead of gathering every
       other column. */
    float phase[2][MAX_POOL_ROW / 2];
    for (int32_t i = 0; 2 * i < in_w; i++) phase[0][i] = xr[2 * i];
    for (int32_t i = 0; 2 * i + 1 < in_w; i++) phase[1][i] = xr[2 * i + 1];
    for (int32_t kx = 0; kx < kernel_w; kx++) {
      const int32_t off = kx - pad_w; /* ox reads ix = 2·ox + off */
      const int32_t q = off & 1, base = (off - q) / 2; /* ix = 2·(ox + base) + q */
      const int32_t lo = off >= 0 ? 0 : (-off + 1) / 2;
      const int32_t hi = off > in_w - 1 ? 0 : min_i32(out_w, (in_w - 1 - off) / 2 + 1);
      if (lo < hi) max_into(yr + lo, phase[q] + base + lo, hi - lo, 1);
    }
    return;
  }
  for (int32_t kx = 0; kx < kernel_w; kx++) {
    /* Column ox reads ix = ox·sw + off; inside the input for ox in [lo, hi). */
    const int32_t off = kx * dilation_w - pad_w;
    const int32_t lo = off >= 0 ? 0 : (-off + stride_w - 1) / stride_w;
    const int32_t hi = off > in_w - 1 ? 0 : min_i32(out_w, (in_w - 1 - off) / stride_w + 1);
    if (lo < hi) max_into(yr + lo, xr + (int64_t)lo * stride_w + off, hi - lo, stride_w);
  }
}

void RK_API(max_pool2d)(const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,
                        int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h,
                        int32_t pad_w, int32_t dilation_h, int32_t dilation_w, int32_t out_h, int32_t out_w, float *y,
                        int32_t tid, int32_t nthreads) {
  int64_t r0, r1;
  split_range((int64_t)batch * channels * out_h, tid, nthreads, 1, &r0, &r1);
  float column_max[MAX_POOL_ROW];
  for (int64_t row = r0; row < r1; row++) {
    const int64_t plane = row / out_h;
    const int32_t oy = (int32_t)(row % out_h);
    const float *xp = x + plane * in_h * in_w;
    float *yr = y + row * out_w;
    for (int32_t ox = 0; ox < out_w; ox++) yr[ox] = -__builtin_inff();
    if (in_w <= MAX_POOL_ROW) {
      int32_t rows = 0;
      for (int32_t ky = 0; ky < kernel_h; ky++) {
        const int32_t iy = oy * stride_h - pad_h + ky * dilation_h;
        if (iy < 0 || iy >= in_h) continue;
        const float *xr = xp + (int64_t)iy * in_w;
        if (rows++ == 0) {
          for (int32_t i = 0; i < in_w; i++) column_max[i] = xr[i];
        } else {
          max_into(column_max, xr, in_w, 1);
        }
      }
      if (rows > 0) max_pool_row(column_max, in_w, kernel_w, stride_w, pad_w, dilation_w, out_w, yr);
      continue;
    }
    for (int32_t ky = 0; ky < kernel_h; ky++) {
      const int32_t iy = oy * stride_h - pad_h + ky * dilation_h;
      if (iy >= 0 && iy < in_h) max_pool_row(xp + (int64_t)iy * in_w, in_w, kernel_w, stride_w, pad_w, dilation_w, out_w, yr);
    }
  }
}

/* Threads split the planes (N·C). Each output is the float64 sum of its window in the
   reference's order (rows, then columns), divided by the window's size; AVG_POOL_LANES planes
   are summed side by side, so that their additions, each plane's still in order, overlap
   instead of waiting on one another (a 7×7 window is 49 dependent additions). */
#define AVG_POOL_LANES 8
/* y[l·out_plane] = the mean of window rows [y0, y1) × columns [x0, x1) of plane l, l < lanes
   (planes in_plane floats apart). */
RK_INLINE void avg_pool_windows(const int32_t lanes, const float *xp, size_t in_plane, int32_t in_w, int32_t y0,
                                int32_t y1, int32_t x0, int32_t x1, float *y, size_t out_plane) {
  double sum[AVG_POOL_LANES] = {0};
  for (int32_t iy = y0; iy < y1; iy++)
    for (int32_t ix = x0; ix < x1; ix++) {
      const float *e = xp + (size_t)iy * in_w + ix;
      for (int32_t l = 0; l < lanes; l++) sum[l] += e[(size_t)l * in_plane];
    }
  const double count = (double)((y1 - y0) * (x1 - x0));
  for (int32_t l = 0; l < lanes; l++) y[(size_t)l * out_plane] = (float)(sum[l] / count);
}

void RK_API(adaptive_avg_pool2d)(const float *x, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,
                                 int32_t out_h, int32_t out_w, float *y, int32_t tid, int32_t nthreads) {
  int64_t p0, p1;
  split_range((int64_t)batch * channels, tid, nthreads, 1, &p0, &p1);
  const size_t in_plane = (size_t)in_h * in_w, out_plane = (size_t)out_h * out_w;
  for (int64_t pb = p0; pb < p1; pb += AVG_POOL_LANES) {
    const int32_t lanes = (int32_t)(p1 - pb < AVG_POOL_LANES ? p1 - pb : AVG_POOL_LANES);
    const float *xp = x + (size_t)pb * in_plane;
    float *yp = y + (size_t)pb * out_plane;
    for (int32_t oy = 0; oy < out_h; oy++) {
      const int32_t y0 = oy * in_h / out_h, y1 = ((oy + 1) * in_h + out_h - 1) / out_h;
      for (int32_t ox = 0; ox < out_w; ox++) {
        const int32_t x0 = ox * in_w / out_w, x1 = ((ox + 1) * in_w + out_w - 1) / out_w;
        const size_t out = (size_t)oy * out_w + ox;
        /* A whole group of lanes with the count known at compile time (the sums stay in
           registers), the last, shorter group with it at run time. */
        if (lanes == AVG_POOL_LANES) {
          avg_pool_windows(AVG_POOL_LANES, xp, in_plane, in_w, y0, y1, x0, x1, yp + out, out_plane);
        } else {
          avg_pool_windows(lanes, xp, in_plane, in_w, y0, y1, x0, x1, yp + out, out_plane);
        }
      }
    }
  }
}

/* Σ a[i]·b[i] over n, in 16 independent lanes so that compilers vectorise it without
   reassociating (no -ffast-math). */
static float dot(const float *restrict a, const float *restrict b, int32_t n) {
  float lanes[16] = {0};
  int32_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int32_t l = 0; l < 16; l++) lanes[l] += a[i + l] * b[i + l];
  float sum = 0.0f;
  for (; i < n; i++) sum += a[i] * b[i];
  for (int32_t l = 0; l < 8; l++) lanes[l] += lanes[l + 8];
  for (int32_t l = 0; l < 4; l++) lanes[l] += lanes[l + 4];
  return sum + ((lanes[0] + lanes[2]) + (lanes[1] + lanes[3]));
}

/* Threads split output features: the weight (O × I, 8 MiB in ResNet-50's fc) is the
   traffic, and each thread streams its own rows of it once for the whole batch. */
void RK_API(linear)(const float *x, const float *w, const float *bias, int32_t batch, int32_t in_features,
                    int32_t out_features, float *y, int32_t tid, int32_t nthreads) {
  int64_t o0, o1;
  split_range(out_features, tid, nthreads, 1, &o0, &o1);
  for (int64_t o = o0; o < o1; o++) {
    const float *wr = w + o * in_features;
    const float b = bias ? bias[o] : 0.0f;
    for (int32_t n = 0; n < batch; n++)
      y[(int64_t)n * out_features + o] = dot(x + (int64_t)n * in_features, wr, in_features) + b;
  }
}

/* Two passes in float64 as the reference backend's: the mean, then the squared deviations
   from it (no cancellation), each in 8 independent lanes so that compilers vectorise without
   reassociating. Threads split channels: a channel's sums are one thread's. */
#define MOMENT_LANES 8
void RK_API(channel_moments)(const float *x, int32_t batch, int32_t channels, int32_t plane, double *mean,
                             double *variance, int32_t tid, int32_t nthreads) {
  int64_t c0, c1;
  split_range(channels, tid, nthreads, 1, &c0, &c1);
  const double count = (double)batch * plane;
  for (int32_t c = (int32_t)c0; c < (int32_t)c1; c++) {
    double s[MOMENT_LANES] = {0};
    for (int32_t n = 0; n < batch; n++) {
      const float *xp = x + ((size_t)n * channels + c) * plane;
      int32_t i = 0;
      for (; i + MOMENT_LANES <= plane; i += MOMENT_LANES)
        for (int32_t l = 0; l < MOMENT_LANES; l++) s[l] += xp[i + l];
      for (; i < plane; i++) s[i % MOMENT_LANES] += xp[i];
    }
    double sum = 0.0;
    for (int32_t l = 0; l < MOMENT_LANES; l++) sum += s[l];
    const double m = sum / count;
    double q[MOMENT_LANES] = {0};
    for (int32_t n = 0; n < batch; n++) {
      const float *xp = x + ((size_t)n * channels + c) * plane;
      int32_t i = 0;
      for (; i + MOMENT_LANES <= plane; i += MOMENT_LANES)
        for (int32_t l = 0; l < MOMENT_LANES; l++) {
          const double d = xp[i + l] - m;
          q[l] += d * d;
        }
      for (; i < plane; i++) {
        const double d = xp[i] - m;
        q[i % MOMENT_LANES] += d * d;
      }
    }
    double squares = 0.0;
    for (int32_t l = 0; l < MOMENT_LANES; l++) squares += q[l];
    mean[c] = m;
    variance[c] = squares / count;
  }
}

/* Threads split the flat N·C·plane range in cache lines; any plane size divides evenly. */
void RK_API(channel_affine)(const float *x, const float *scale, const float *shift, int32_t batch, int32_t channels,
                            int32_t plane, float *y, int32_t tid, int32_t nthreads) {
  int64_t e0, e1;
  split_range((int64_t)batch * channels * plane, tid, nthreads, 16, &e0, &e1);
  while (e0 < e1) {
    const int64_t index = e0 / plane;
    const int32_t c = (int32_t)(index % channels);
    const int64_t end = (index + 1) * plane < e1 ? (index + 1) * plane : e1;
    const float a = scale[c], b = shift[c];
    for (int64_t i = e0; i < end; i++) y[i] = x[i] * a + b;
    e0 = end;
  }
}

/* Threads split the flat range in cache lines. */
void RK_API(add)(const float *a, const float *b, int64_t n, int32_t flags, float *y, int32_t tid, int32_t nthreads) {
  int64_t i0, i1;
  split_range(n, tid, nthreads, 16, &i0, &i1);
  if (flags & RK_RELU) {
    for (int64_t i = i0; i < i1; i++) {
      const float v = a[i] + b[i];
      y[i] = v > 0.0f ? v : 0.0f;
    }
  } else {
    for (int64_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
  }
}

/* Threads split the flat range in cache lines. x > 0 ? x : 0, as the reference (NaN → 0). */
void RK_API(relu)(const float *x, int64_t n, float *y, int32_t tid, int32_t nthreads) {
  int64_t i0, i1;
  split_range(n, tid, nthreads, 16, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}


const char *RK_API(isa)(void) {
#if defined(RK_AVX512)
  return "avx512f";
#elif defined(RK_AVX2)
  return "avx2-fma";
#elif defined(__wasm_simd128__) && defined(__wasm_relaxed_simd__)
  return "wasm-simd128-relaxed";
#elif defined(__wasm_simd128__)
  return "wasm-simd128";
#elif defined(RK_VEC4)
  return "neon";
#else
  return "scalar";
#endif
}
