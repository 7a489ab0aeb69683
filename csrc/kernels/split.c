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

/* Thread tid's share of `images` × `panels` units (a plane's NR-pixel panels, image after
   image), walked as runs of panels within one image: while (next_panel_run(&r, &image, &p0,
   &p1)) works on panels [p0, p1) of `image`. */
typedef struct {
  int64_t u, end;
  int32_t panels;
} panel_runs;

static panel_runs panel_runs_of(int64_t images, int32_t panels, int32_t tid, int32_t nthreads) {
  const int64_t units = images * panels;
  panel_runs r = {units * tid / nthreads, units * (tid + 1) / nthreads, panels};
  return r;
}

static int32_t next_panel_run(panel_runs *r, int32_t *image, int32_t *panel0, int32_t *panel1) {
  if (r->u >= r->end) return 0;
  *image = (int32_t)(r->u / r->panels);
  const int64_t image_start = (int64_t)*image * r->panels;
  const int64_t end = r->end < image_start + r->panels ? r->end : image_start + r->panels;
  *panel0 = (int32_t)(r->u - image_start), *panel1 = (int32_t)(end - image_start);
  r->u = end;
  return 1;
}
