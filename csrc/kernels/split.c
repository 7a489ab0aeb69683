/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): work splitting: the ranges each (tid, nthreads) slice computes. */

/* [begin, end) of thread tid's share of n units, in whole multiples of `align` units
   (align 16 floats = one cache line, so neighbours never write the same line). */
static void split_range(int64_t n, int32_t tid, int32_t nthreads, int64_t align, int64_t *begin, int64_t *end) {
  const int64_t chunks = (n + align - 1) / align;
  const int64_t b = chunks * tid / nthreads * align;
  const int64_t e = chunks * (tid + 1) / nthreads * align;
  *begin = b < n ? b : n;
  *end = e < n ? e : n;
}

/* Slice tid of nthreads of `rows` output channels in whole MR-row panels: [*m0, *m1), m0 a
   multiple of MR; false when the slice is empty. */
static int32_t row_slice(int32_t rows, int32_t tid, int32_t nthreads, int32_t *m0, int32_t *m1) {
  const int32_t panels = ceil_div(rows, MR);
  *m0 = (int32_t)((int64_t)panels * tid / nthreads) * MR;
  *m1 = min_i32(rows, (int32_t)((int64_t)panels * (tid + 1) / nthreads) * MR);
  return *m0 < *m1;
}
