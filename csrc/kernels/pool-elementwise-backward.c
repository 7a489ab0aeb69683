/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): the gradients of max pooling, adaptive average pooling and relu. */

/* Output columns max_pool2d_backward tracks at once (their running maxima live on the stack). */
#define MAX_POOL_COLUMNS 256

/* dx (N, C, H, W) of max pooling: each dy goes to the input that won its window, found as the
   forward finds it (the first maximum in torch's window order, ky then kx; a NaN wins, and
   the last NaN of a window if several; a window of -inf gives it to its first input inside).
   Overlapping windows add up. Like the forward, a row of outputs at a time, one tap at a time
   across the row (the running maximum and its index per column: selects the compiler
   vectorises). Threads split planes (N·C): windows overlap within a plane only, so each
   plane's dx is one thread's. */
void RK_API(max_pool2d_backward)(const float *x, const float *dy, int32_t batch, int32_t channels, int32_t in_h,
                                 int32_t in_w, int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w,
                                 int32_t pad_h, int32_t pad_w, int32_t dilation_h, int32_t dilation_w, int32_t out_h,
                                 int32_t out_w, float *dx, int32_t tid, int32_t nthreads) {
  int64_t p0, p1;
  split_range((int64_t)batch * channels, tid, nthreads, 1, &p0, &p1);
  const size_t in_plane = (size_t)in_h * in_w, out_plane = (size_t)out_h * out_w;
  float best[MAX_POOL_COLUMNS];
  int32_t winner[MAX_POOL_COLUMNS]; /* index in the plane, -1 before the first tap inside */
  for (int64_t plane = p0; plane < p1; plane++) {
    const float *xp = x + (size_t)plane * in_plane;
    const float *dyp = dy + (size_t)plane * out_plane;
    float *dxp = dx + (size_t)plane * in_plane;
    for (size_t i = 0; i < in_plane; i++) dxp[i] = 0.0f;
    for (int32_t oy = 0; oy < out_h; oy++) {
      for (int32_t ox0 = 0; ox0 < out_w; ox0 += MAX_POOL_COLUMNS) {
        const int32_t columns = min_i32(MAX_POOL_COLUMNS, out_w - ox0);
        for (int32_t j = 0; j < columns; j++) best[j] = -__builtin_inff(), winner[j] = -1;
        for (int32_t ky = 0; ky < kernel_h; ky++) {
          const int32_t iy = oy * stride_h - pad_h + ky * dilation_h;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < kernel_w; kx++) {
            /* Column ox0 + j reads ix = (ox0 + j)·sw + off; inside the input for j in [lo, hi). */
            const int32_t off = ox0 * stride_w + kx * dilation_w - pad_w;
            const int32_t lo = min_i32(columns, off >= 0 ? 0 : (-off + stride_w - 1) / stride_w);
            const int32_t hi = max_i32(lo, min_i32(columns, off > in_w - 1 ? 0 : (in_w - 1 - off) / stride_w + 1));
            const int32_t base = iy * in_w + off;
            for (int32_t j = lo; j < hi; j++) {
              const float v = xp[base + j * stride_w];
              const int take = (winner[j] < 0) | (v > best[j]) | (v != v);
              best[j] = take ? v : best[j];
              winner[j] = take ? base + j * stride_w : winner[j];
            }
          }
        }
        const float *dyr = dyp + (size_t)oy * out_w + ox0;
        for (int32_t j = 0; j < columns; j++)
          if (winner[j] >= 0) dxp[winner[j]] += dyr[j];
      }
    }
  }
}

/* dx (N, C, H, W) of adaptive average pooling: dy / window area to every input of its window
   (torch's windows [floor(i·H/OH), ceil((i+1)·H/OH)), which overlap when OH does not divide
   H). Threads split planes (N·C), each plane's dx one thread's. */
void RK_API(adaptive_avg_pool2d_backward)(const float *dy, int32_t batch, int32_t channels, int32_t in_h, int32_t in_w,
                                          int32_t out_h, int32_t out_w, float *dx, int32_t tid, int32_t nthreads) {
  int64_t p0, p1;
  split_range((int64_t)batch * channels, tid, nthreads, 1, &p0, &p1);
  const size_t in_plane = (size_t)in_h * in_w, out_plane = (size_t)out_h * out_w;
  for (int64_t plane = p0; plane < p1; plane++) {
    const float *dyp = dy + (size_t)plane * out_plane;
    float *dxp = dx + (size_t)plane * in_plane;
    for (size_t i = 0; i < in_plane; i++) dxp[i] = 0.0f;
    for (int32_t oy = 0; oy < out_h; oy++) {
      const int32_t y0 = oy * in_h / out_h, y1 = ((oy + 1) * in_h + out_h - 1) / out_h;
      for (int32_t ox = 0; ox < out_w; ox++) {
        const int32_t x0 = ox * in_w / out_w, x1 = ((ox + 1) * in_w + out_w - 1) / out_w;
        const float share = dyp[(size_t)oy * out_w + ox] / (float)((y1 - y0) * (x1 - x0));
        for (int32_t iy = y0; iy < y1; iy++)
          for (int32_t ix = x0; ix < x1; ix++) dxp[(size_t)iy * in_w + ix] += share;
      }
    }
  }
}

/* dx = dy where y > 0, else 0 (y: relu's output). Threads split the flat range in cache lines. */
void RK_API(relu_backward)(const float *y, const float *dy, int64_t n, float *dx, int32_t tid, int32_t nthreads) {
  int64_t i0, i1;
  split_range(n, tid, nthreads, 16, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
