/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): per-channel sums (bias gradients, BatchNorm's dβ) and train-mode BatchNorm's backward. */

/* Σ over n and the plane of x[n, c, ·] for channel c of (N, C, plane), and Σ x·(x2 − mean)
   alongside when x2 is given; in float64, as the reference sums, in 8 independent lanes so
   that compilers vectorise it without reassociating (no -ffast-math). */
#define SUM_LANES 8
static void channel_sum_pair(const float *x, const float *x2, double mean, int32_t batch, int32_t channels,
                             int32_t plane, int32_t c, double *sum, double *sum_centered) {
  double s[SUM_LANES] = {0}, sc[SUM_LANES] = {0};
  for (int32_t n = 0; n < batch; n++) {
    const float *restrict xp = x + ((size_t)n * channels + c) * plane;
    int32_t i = 0;
    if (x2) {
      const float *restrict x2p = x2 + ((size_t)n * channels + c) * plane;
      for (; i + SUM_LANES <= plane; i += SUM_LANES) {
        for (int32_t l = 0; l < SUM_LANES; l++) {
          s[l] += xp[i + l];
          sc[l] += (double)xp[i + l] * ((double)x2p[i + l] - mean);
        }
      }
      for (; i < plane; i++) {
        s[0] += xp[i];
        sc[0] += (double)xp[i] * ((double)x2p[i] - mean);
      }
    } else {
      for (; i + SUM_LANES <= plane; i += SUM_LANES)
        for (int32_t l = 0; l < SUM_LANES; l++) s[l] += xp[i + l];
      for (; i < plane; i++) s[0] += xp[i];
    }
  }
  double total = 0.0, total_centered = 0.0;
  for (int32_t l = 0; l < SUM_LANES; l++) total += s[l], total_centered += sc[l];
  *sum = total;
  *sum_centered = total_centered;
}

/* sums[c] = Σ over n and the plane of dy (N, C, plane); plane 1 for (N, C). Threads split
   channels, each channel's sum one thread's. */
void RK_API(channel_sums)(const float *dy, int32_t batch, int32_t channels, int32_t plane, float *sums, int32_t tid,
                          int32_t nthreads) {
  int64_t c0, c1;
  split_range(channels, tid, nthreads, 1, &c0, &c1);
  for (int32_t c = (int32_t)c0; c < (int32_t)c1; c++) {
    double sum, unused;
    channel_sum_pair(dy, 0, 0.0, batch, channels, plane, c, &sum, &unused);
    sums[c] = (float)sum;
  }
}

/* Train-mode BatchNorm's backward over x, dy (N, C, plane), with the forward's batch mean and
   inv_std = 1/sqrt(var + eps) (C, float64) and gamma (C, or NULL: 1):
     dbeta = Σ dy, dgamma = Σ dy·x̂, dx = gamma·inv_std·(dy − dbeta/count − x̂·dgamma/count),
   x̂ = (x − mean)·inv_std, sums over (N, plane). Threads split channels: a channel's sums and
   its dx are one thread's, so nothing is reduced across threads. */
void RK_API(batch_norm_backward)(const float *x, const float *dy, const double *mean, const double *inv_std,
                                 const float *gamma, int32_t batch, int32_t channels, int32_t plane, float *dx,
                                 float *dgamma, float *dbeta, int32_t tid, int32_t nthreads) {
  int64_t c0, c1;
  split_range(channels, tid, nthreads, 1, &c0, &c1);
  const double count = (double)batch * plane;
  for (int32_t c = (int32_t)c0; c < (int32_t)c1; c++) {
    double sum_dy, sum_dy_centered;
    channel_sum_pair(dy, x, mean[c], batch, channels, plane, c, &sum_dy, &sum_dy_centered);
    const double sum_dy_xhat = sum_dy_centered * inv_std[c];
    dbeta[c] = (float)sum_dy;
    dgamma[c] = (float)sum_dy_xhat;
    /* dx = a·dy + b·(x − mean) + d, folded per channel in float64 and rounded once:
       a = gamma·inv_std, b = −a·inv_std·mean(dy·x̂), d = −a·mean(dy). */
    const double a = (gamma ? gamma[c] : 1.0) * inv_std[c];
    const double b = -a * inv_std[c] * (sum_dy_xhat / count);
    const double d = -a * (sum_dy / count);
    const float fa = (float)a, fb = (float)b, fd = (float)d, fmean = (float)mean[c];
    for (int32_t n = 0; n < batch; n++) {
      const size_t start = ((size_t)n * channels + c) * plane;
      const float *xp = x + start, *dyp = dy + start;
      float *dxp = dx + start;
      for (int32_t i = 0; i < plane; i++) dxp[i] = fa * dyp[i] + fb * (xp[i] - fmean) + fd;
    }
  }
}
