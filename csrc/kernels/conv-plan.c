/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): what every thread derives from a convolution's shape. */

/* What every thread derives from the shape, the same way. */
typedef struct {
  int32_t group_in, group_out;  /* C/groups, O/groups */
  int32_t taps;                 /* kh·kw */
  int32_t k;                    /* C/groups·kh·kw: GEMM depth */
  int32_t row_panels;           /* ceil(O/groups / MR) */
  int32_t in_plane, out_plane;  /* H·W, OH·OW */
  int32_t pixel_panels;         /* ceil(OH·OW / NR) */
  int32_t block_channels;       /* input channels per K block: KC rows rounded to whole channels */
  int32_t direct;               /* 1×1, stride 1, no padding: B is the input planes themselves */
  int32_t indirect;             /* unit column stride, wide rows: B rows in one input row are read in place */
} conv_plan;

/* Column stride 2 (the stem, the strided 3×3s), undilated, kernel at least 3 wide: a panel of
   NR pixels in one output row reads, for tap kx, inputs ix = 2·ox0 − pad + kx + 2·l: the
   taps of one parity read the same every-other-column sequence, shifted by kx/2. So such a
   panel gathers each (channel, kernel row) once per parity into a short "phase row"
   (NR + (kw − 1)/2 values, zeros for padding) and points the indirect micro-kernel at it,
   kx/2 in, instead of gathering every tap's row (kw/2 times less strided copying). The phase
   rows of a panel fit in the space of its packed rows (2·(NR + (kw−1)/2) ≤ kw·NR). */
static int32_t phase_rows_apply(const rk_conv2d_shape *s) {
  return s->stride_w == 2 && s->dilation_w == 1 && s->kernel_w >= 3;
}

static conv_plan plan_conv(const rk_conv2d_shape *s) {
  conv_plan p;
  p.group_in = s->in_channels / s->groups;
  p.group_out = s->out_channels / s->groups;
  p.taps = s->kernel_h * s->kernel_w;
  p.k = p.group_in * p.taps;
  p.row_panels = ceil_div(p.group_out, MR);
  p.in_plane = s->in_h * s->in_w;
  p.out_plane = s->out_h * s->out_w;
  p.pixel_panels = ceil_div(p.out_plane, NR);
  /* Equal K blocks of whole channels, none above KC rows unless one channel's taps are. */
  const int32_t per_block = max_i32(1, KC / p.taps);
  const int32_t blocks = ceil_div(p.group_in, per_block);
  p.block_channels = ceil_div(p.group_in, blocks);
  p.direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
             s->pad_w == 0;
  /* Only rows at least a panel wide have B rows to read in place; narrower (7×7) planes
     would pay the pointers for nothing. */
  p.indirect = !p.direct && (s->stride_w == 1 || phase_rows_apply(s)) && s->out_w >= NR;
  return p;
}

/* One convolution call as each thread sees it. */
typedef struct {
  const rk_conv2d_shape *s;
  const conv_plan *p;
  const float *x, *packed, *bias, *residual;
  int32_t relu;
  float *y;
  float *scratch; /* this thread's */
} conv_args;
