/*
 * The native Node addon of resnet-ts: Node-API glue from JavaScript typed arrays to the
 * kernels of csrc/kernels.c, run by the pthread pool of threadpool.c. Three builds of the
 * kernels are linked in on x86-64 (AVX-512F, AVX2+FMA and portable) and exposed as
 * `variants`; the best one the CPU supports (__builtin_cpu_supports) is `best`. Output
 * arrays are allocated by the caller in JavaScript and written in place: nothing is copied.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32.h"
#include "threadpool.h"
#include "../kernels.h"
#if defined(RK_HAVE_AVX2_VARIANT)
#undef RK_API
#define RK_API(name) rk_avx2_##name
#include "../kernels.h"
#endif
#if defined(RK_HAVE_AVX512_VARIANT)
#undef RK_API
#define RK_API(name) rk_avx512_##name
#include "../kernels.h"
#endif

/* ---------------------------------------------------------------------------------------
 * Kernel variants.
 * ------------------------------------------------------------------------------------- */

/* One build's entry points, a field per line of RK_KERNELS (csrc/kernels.h). */
typedef struct {
#define RK_FIELD(ret, name, params) ret(*name) params;
  RK_KERNELS(RK_FIELD)
#undef RK_FIELD
} kernel_table;

#define RK_PORTABLE(ret, name, params) .name = rk_##name,
static const kernel_table portable_kernels = {RK_KERNELS(RK_PORTABLE)};
#if defined(RK_HAVE_AVX2_VARIANT)
#define RK_AVX2(ret, name, params) .name = rk_avx2_##name,
static const kernel_table avx2_kernels = {RK_KERNELS(RK_AVX2)};
#endif
#if defined(RK_HAVE_AVX512_VARIANT)
#define RK_AVX512(ret, name, params) .name = rk_avx512_##name,
static const kernel_table avx512_kernels = {RK_KERNELS(RK_AVX512)};
#endif

/* Per Node environment (the main thread and each worker_thread load the addon apart). */
typedef struct {
  thread_pool pool;
  float *scratch;
  size_t scratch_floats;
} addon_state;

static addon_state *get_state(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static float *scratch_of(addon_state *state, size_t floats) {
  if (floats <= state->scratch_floats) return state->scratch;
  void *p = NULL;
  if (posix_memalign(&p, 64, floats * sizeof(float) + 64) != 0) return NULL;
  free(state->scratch);
  state->scratch = p;
  state->scratch_floats = floats;
  return state->scratch;
}

/* ---------------------------------------------------------------------------------------
 * Argument helpers: each returns false with a JavaScript exception pending.
 * ------------------------------------------------------------------------------------- */

#define MAX_ARGS 12

typedef struct {
  napi_env env;
  const kernel_table *kernels;
  size_t argc;
  napi_value argv[MAX_ARGS];
} call_info;

static bool get_call(napi_env env, napi_callback_info info, size_t expected, call_info *call) {
  void *data = NULL;
  call->env = env;
  call->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &call->argc, call->argv, NULL, &data) != napi_ok) return false;
  call->kernels = data;
  if (call->argc < expected) {
    napi_throw_type_error(env, NULL, "resnet native: too few arguments");
    return false;
  }
  return true;
}

static bool fail(napi_env env, const char *what, const char *message) {
  char text[160];
  snprintf(text, sizeof text, "resnet native: %s %s", what, message);
  napi_throw_type_error(env, NULL, text);
  return false;
}

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  return type == napi_null || type == napi_undefined;
}

/* A typed array of `type` with at least `min_length` elements (NULL when nullable and null). */
static bool typed_arg(napi_env env, napi_value v, napi_typedarray_type type, const char *what, size_t min_length,
                      bool nullable, void **data) {
  *data = NULL;
  if (nullable && is_nullish(env, v)) return true;
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (!is_typed) return fail(env, what, "must be a typed array");
  napi_typedarray_type actual;
  size_t length;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &actual, &length, data, &buffer, &offset) != napi_ok) return false;
  if (actual != type)
    return fail(env, what,
                type == napi_float32_array   ? "must be a Float32Array"
                : type == napi_float64_array ? "must be a Float64Array"
                                             : "must be an Int32Array");
  if (length < min_length) return fail(env, what, "is too short for the shape");
  return true;
}

static bool f32_arg(call_info *c, size_t i, const char *what, size_t min_length, bool nullable, float **data) {
  return typed_arg(c->env, c->argv[i], napi_float32_array, what, min_length, nullable, (void **)data);
}

static bool int_arg(call_info *c, size_t i, const char *what, int64_t min, int64_t *value) {
  napi_valuetype type;
  napi_typeof(c->env, c->argv[i], &type);
  if (type == napi_boolean) {
    bool b;
    napi_get_value_bool(c->env, c->argv[i], &b);
    *value = b;
  } else if (napi_get_value_int64(c->env, c->argv[i], value) != napi_ok) {
    return fail(c->env, what, "must be a number");
  }
  if (*value < min) return fail(c->env, what, "is out of range");
  return true;
}

/* A count the TypeScript side chose for this call (src/backends/slicing.ts, the policy the wasm
   backend follows too), at argument i: the slices, or conv2d's threads; at least 1. Slices past
   the pool's threads are claimed in turn. */
static bool count_arg(call_info *c, size_t i, const char *what, int32_t *count) {
  int64_t n;
  if (!int_arg(c, i, what, 1, &n)) return false;
  if (n > 4096) return fail(c->env, what, "is more than 4096");
  *count = (int32_t)n;
  return true;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value number(napi_env env, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  return n;
}

/* The geometry Int32Array: batch, in_channels, in_h, in_w, out_channels, out_h, out_w,
   kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
   checked so that no kernel can read or write out of bounds. */
static bool shape_arg(call_info *c, size_t i, rk_conv2d_shape *s) {
  int32_t *g;
  if (!typed_arg(c->env, c->argv[i], napi_int32_array, "geometry", 16, false, (void **)&g)) return false;
  memcpy(s, g, sizeof *s);
  for (int j = 0; j < 16; j++) {
    const int min = (j >= 11 && j <= 12) ? 0 : 1; /* padding may be 0 */
    if (g[j] < min) return fail(c->env, "geometry", "has a non-positive entry");
  }
  if (s->in_channels % s->groups || s->out_channels % s->groups) return fail(c->env, "geometry", "channels do not divide into groups");
  const int64_t oh = ((int64_t)s->in_h + 2 * s->pad_h - (int64_t)s->dilation_h * (s->kernel_h - 1) - 1) / s->stride_h + 1;
  const int64_t ow = ((int64_t)s->in_w + 2 * s->pad_w - (int64_t)s->dilation_w * (s->kernel_w - 1) - 1) / s->stride_w + 1;
  if (oh != s->out_h || ow != s->out_w) return fail(c->env, "geometry", "output size does not match the convolution");
  return true;
}

/* ---------------------------------------------------------------------------------------
 * Exported functions; `this` variant's kernels come in as the callback data.
 * ------------------------------------------------------------------------------------- */

static napi_value js_isa(napi_env env, napi_callback_info info) {
  call_info c;
  if (!get_call(env, info, 0, &c)) return NULL;
  napi_value s;
  napi_create_string_utf8(env, c.kernels->isa(), NAPI_AUTO_LENGTH, &s);
  return s;
}

/* conv2dPacking(geometry) → number: the layout conv2dPack writes (RK_PACKING_*) */
static napi_value js_conv2d_packing(napi_env env, napi_callback_info info) {
  call_info c;
  rk_conv2d_shape s;
  if (!get_call(env, info, 1, &c) || !shape_arg(&c, 0, &s)) return NULL;
  return number(env, (double)c.kernels->conv2d_packing(&s));
}

/* conv2dPackedFloats(geometry) → number */
static napi_value js_conv2d_packed_floats(napi_env env, napi_callback_info info) {
  call_info c;
  rk_conv2d_shape s;
  if (!get_call(env, info, 1, &c) || !shape_arg(&c, 0, &s)) return NULL;
  return number(env, (double)c.kernels->conv2d_packed_floats(&s));
}

typedef struct {
  const kernel_table *kernels;
  const rk_conv2d_shape *s;
  const float *weight;
  const double *scale;
  float *packed;
} pack_task;

static void run_pack(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  const pack_task *t = ctx;
  (void)thread;
  t->kernels->conv2d_pack(t->s, t->weight, t->scale, t->packed, tid, nthreads);
}

/* conv2dPack(geometry, weight, scale | null, packed, slices): scale a Float64Array of O (BatchNorm folded in) */
static napi_value js_conv2d_pack(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  rk_conv2d_shape s;
  pack_task t;
  if (!get_call(env, info, 5, &c) || !count_arg(&c, 4, "slices", &slices) || !shape_arg(&c, 0, &s)) return NULL;
  const size_t weight_floats = (size_t)s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
  if (!f32_arg(&c, 1, "weight", weight_floats, false, (float **)&t.weight) ||
      !typed_arg(env, c.argv[2], napi_float64_array, "scale", (size_t)s.out_channels, true, (void **)&t.scale) ||
      !f32_arg(&c, 3, "packed", c.kernels->conv2d_packed_floats(&s), false, &t.packed))
    return NULL;
  t.kernels = c.kernels;
  t.s = &s;
  pool_run(&get_state(env)->pool, run_pack, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const rk_conv2d_shape *s;
  const float *x, *packed, *bias, *residual;
  int32_t flags;
  float *y, *scratch;
  size_t scratch_per_thread;
} conv_task;

static void run_conv(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  const conv_task *t = ctx;
  t->kernels->conv2d(t->s, t->x, t->packed, t->bias, t->residual, t->flags, t->y,
                     t->scratch + t->scratch_per_thread * (size_t)thread, tid, nthreads);
}

/* conv2d(geometry, x, packed, bias | null, residual | null, relu, y, threads): threads the work is worth */
static napi_value js_conv2d(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t worth;
  rk_conv2d_shape s;
  conv_task t;
  int64_t relu;
  if (!get_call(env, info, 8, &c) || !count_arg(&c, 7, "threads", &worth) || !shape_arg(&c, 0, &s)) return NULL;
  const size_t in_floats = (size_t)s.batch * s.in_channels * s.in_h * s.in_w;
  const size_t out_floats = (size_t)s.batch * s.out_channels * s.out_h * s.out_w;
  if (!f32_arg(&c, 1, "x", in_floats, false, (float **)&t.x) ||
      !f32_arg(&c, 2, "packed", c.kernels->conv2d_packed_floats(&s), false, (float **)&t.packed) ||
      !f32_arg(&c, 3, "bias", (size_t)s.out_channels, true, (float **)&t.bias) ||
      !f32_arg(&c, 4, "residual", out_floats, true, (float **)&t.residual) || !int_arg(&c, 5, "relu", 0, &relu) ||
      !f32_arg(&c, 6, "y", out_floats, false, &t.y))
    return NULL;
  addon_state *state = get_state(env);
  /* The threads the TypeScript side found the work worth, then the slices the kernel cuts the
     convolution into for them. */
  const int32_t slices = c.kernels->conv2d_slices(&s, worth < state->pool.threads ? worth : state->pool.threads);
  t.scratch_per_thread = c.kernels->conv2d_scratch_floats(&s);
  t.scratch = scratch_of(state, t.scratch_per_thread * (size_t)state->pool.threads);
  if (!t.scratch) {
    napi_throw_error(env, NULL, "resnet native: out of memory for convolution scratch");
    return NULL;
  }
  t.kernels = c.kernels;
  t.s = &s;
  t.flags = relu ? RK_RELU : 0;
  pool_run(&state->pool, run_conv, &t, slices);
  return undefined(env);
}


typedef struct {
  const kernel_table *kernels;
  const float *x;
  int32_t d[14];
  float *y;
} pool2d_task;

static void run_max_pool2d(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const pool2d_task *t = ctx;
  const int32_t *d = t->d;
  t->kernels->max_pool2d(t->x, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13],
                         t->y, tid, nthreads);
}

static void run_adaptive_avg_pool2d(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const pool2d_task *t = ctx;
  const int32_t *d = t->d;
  t->kernels->adaptive_avg_pool2d(t->x, d[0], d[1], d[2], d[3], d[4], d[5], t->y, tid, nthreads);
}

/* maxPool2d(x, dims, y, slices), dims: batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h,
   stride_w, pad_h, pad_w, dilation_h, dilation_w, out_h, out_w */
static napi_value js_max_pool2d(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  pool2d_task t;
  int32_t *d;
  if (!get_call(env, info, 4, &c) || !count_arg(&c, 3, "slices", &slices) ||
      !typed_arg(env, c.argv[1], napi_int32_array, "dims", 14, false, (void **)&d))
    return NULL;
  memcpy(t.d, d, sizeof t.d);
  for (int j = 0; j < 14; j++)
    if (d[j] < ((j == 8 || j == 9) ? 0 : 1)) return fail(env, "dims", "has a non-positive entry"), NULL;
  const int64_t planes = (int64_t)d[0] * d[1];
  if (!f32_arg(&c, 0, "x", (size_t)(planes * d[2] * d[3]), false, (float **)&t.x) ||
      !f32_arg(&c, 2, "y", (size_t)(planes * d[12] * d[13]), false, &t.y))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_max_pool2d, &t, slices);
  return undefined(env);
}

/* adaptiveAvgPool2d(x, dims, y, slices), dims: batch, channels, in_h, in_w, out_h, out_w */
static napi_value js_adaptive_avg_pool2d(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  pool2d_task t;
  int32_t *d;
  if (!get_call(env, info, 4, &c) || !count_arg(&c, 3, "slices", &slices) || !typed_arg(env, c.argv[1], napi_int32_array, "dims", 6, false, (void **)&d))
    return NULL;
  memcpy(t.d, d, 6 * sizeof(int32_t));
  for (int j = 0; j < 6; j++)
    if (d[j] < 1) return fail(env, "dims", "has a non-positive entry"), NULL;
  const int64_t planes = (int64_t)d[0] * d[1];
  if (!f32_arg(&c, 0, "x", (size_t)(planes * d[2] * d[3]), false, (float **)&t.x) ||
      !f32_arg(&c, 2, "y", (size_t)(planes * d[4] * d[5]), false, &t.y))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_adaptive_avg_pool2d, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const float *x, *w, *bias;
  int32_t batch, in_features, out_features;
  float *y;
} linear_task;

static void run_linear(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const linear_task *t = ctx;
  t->kernels->linear(t->x, t->w, t->bias, t->batch, t->in_features, t->out_features, t->y, tid, nthreads);
}

/* linear(x, weight, bias | null, batch, inFeatures, outFeatures, y, slices) */
static napi_value js_linear(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  linear_task t;
  int64_t batch, in_features, out_features;
  if (!get_call(env, info, 8, &c) || !count_arg(&c, 7, "slices", &slices) || !int_arg(&c, 3, "batch", 1, &batch) ||
      !int_arg(&c, 4, "inFeatures", 0, &in_features) || !int_arg(&c, 5, "outFeatures", 1, &out_features) ||
      !f32_arg(&c, 0, "x", (size_t)(batch * in_features), false, (float **)&t.x) ||
      !f32_arg(&c, 1, "weight", (size_t)(out_features * in_features), false, (float **)&t.w) ||
      !f32_arg(&c, 2, "bias", (size_t)out_features, true, (float **)&t.bias) ||
      !f32_arg(&c, 6, "y", (size_t)(batch * out_features), false, &t.y))
    return NULL;
  t.kernels = c.kernels;
  t.batch = (int32_t)batch;
  t.in_features = (int32_t)in_features;
  t.out_features = (int32_t)out_features;
  pool_run(&get_state(env)->pool, run_linear, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const float *a, *b, *c; /* add: a + b; relu: a; channel affine: x = a, scale = b, shift = c */
  int32_t batch, channels, plane, flags;
  int64_t n;
  float *y;
} elementwise_task;

static void run_channel_affine(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const elementwise_task *t = ctx;
  t->kernels->channel_affine(t->a, t->b, t->c, t->batch, t->channels, t->plane, t->y, tid, nthreads);
}

/* channelAffine(x, scale, shift, batch, channels, plane, y, slices) */
static napi_value js_channel_affine(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  elementwise_task t;
  int64_t batch, channels, plane;
  if (!get_call(env, info, 8, &c) || !count_arg(&c, 7, "slices", &slices) || !int_arg(&c, 3, "batch", 1, &batch) || !int_arg(&c, 4, "channels", 1, &channels) ||
      !int_arg(&c, 5, "plane", 0, &plane) ||
      !f32_arg(&c, 0, "x", (size_t)(batch * channels * plane), false, (float **)&t.a) ||
      !f32_arg(&c, 1, "scale", (size_t)channels, false, (float **)&t.b) ||
      !f32_arg(&c, 2, "shift", (size_t)channels, false, (float **)&t.c) ||
      !f32_arg(&c, 6, "y", (size_t)(batch * channels * plane), false, &t.y))
    return NULL;
  if (plane == 0) return undefined(env);
  t.kernels = c.kernels;
  t.batch = (int32_t)batch;
  t.channels = (int32_t)channels;
  t.plane = (int32_t)plane;
  pool_run(&get_state(env)->pool, run_channel_affine, &t, slices);
  return undefined(env);
}

static void run_add(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const elementwise_task *t = ctx;
  t->kernels->add(t->a, t->b, t->n, t->flags, t->y, tid, nthreads);
}

static void run_relu(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const elementwise_task *t = ctx;
  t->kernels->relu(t->a, t->n, t->y, tid, nthreads);
}

/* add(a, b, relu, y, slices), over y's length */
static napi_value js_add(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  elementwise_task t;
  int64_t relu;
  size_t n;
  if (!get_call(env, info, 5, &c) || !count_arg(&c, 4, "slices", &slices) || !f32_arg(&c, 3, "y", 0, false, &t.y)) return NULL;
  napi_get_typedarray_info(env, c.argv[3], NULL, &n, NULL, NULL, NULL);
  if (!f32_arg(&c, 0, "a", n, false, (float **)&t.a) || !f32_arg(&c, 1, "b", n, false, (float **)&t.b) ||
      !int_arg(&c, 2, "relu", 0, &relu))
    return NULL;
  t.kernels = c.kernels;
  t.n = (int64_t)n;
  t.flags = relu ? RK_RELU : 0;
  pool_run(&get_state(env)->pool, run_add, &t, slices);
  return undefined(env);
}

/* relu(x, y, slices), over y's length */
static napi_value js_relu(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  elementwise_task t;
  size_t n;
  if (!get_call(env, info, 3, &c) || !count_arg(&c, 2, "slices", &slices) || !f32_arg(&c, 1, "y", 0, false, &t.y)) return NULL;
  napi_get_typedarray_info(env, c.argv[1], NULL, &n, NULL, NULL, NULL);
  if (!f32_arg(&c, 0, "x", n, false, (float **)&t.a)) return NULL;
  t.kernels = c.kernels;
  t.n = (int64_t)n;
  pool_run(&get_state(env)->pool, run_relu, &t, slices);
  return undefined(env);
}

/* ---------------------------------------------------------------------------------------
 * Backward (training) kernels.
 * ------------------------------------------------------------------------------------- */

/* The GEMM-based backward kernels (convolution gradients, matmul): a task per call, a block
   of scratch per pool thread. */
typedef struct {
  const kernel_table *kernels;
  const rk_conv2d_shape *s;
  const float *a, *b; /* conv input gradient: dy, weight; weight gradient: x, dy; matmul: a, b */
  float *out, *scratch;
  size_t scratch_per_thread;
  int32_t m, n, k, flags; /* matmul */
} gemm_task;

static void run_conv2d_backward_input(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  const gemm_task *t = ctx;
  t->kernels->conv2d_backward_input(t->s, t->a, t->b, t->out, t->scratch + t->scratch_per_thread * (size_t)thread, tid,
                                    nthreads);
}

static void run_conv2d_backward_weight(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  const gemm_task *t = ctx;
  t->kernels->conv2d_backward_weight(t->s, t->a, t->b, t->out, t->scratch + t->scratch_per_thread * (size_t)thread,
                                     tid, nthreads);
}

static void run_matmul(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  const gemm_task *t = ctx;
  t->kernels->matmul(t->a, t->b, t->m, t->n, t->k, t->flags, t->out,
                     t->scratch + t->scratch_per_thread * (size_t)thread, tid, nthreads);
}

/* Gives the task a scratch block of `floats` (rounded to whole cache lines) per pool thread;
   false with an exception pending. */
static bool gemm_scratch(napi_env env, gemm_task *t, size_t floats) {
  addon_state *state = get_state(env);
  t->scratch_per_thread = (floats + 15) & ~(size_t)15;
  t->scratch = scratch_of(state, t->scratch_per_thread * (size_t)state->pool.threads);
  if (!t->scratch) {
    napi_throw_error(env, NULL, "resnet native: out of memory for GEMM scratch");
    return false;
  }
  return true;
}

/* conv2dBackwardInput(geometry, dy, weight, dx, slices) */
static napi_value js_conv2d_backward_input(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  rk_conv2d_shape s;
  gemm_task t;
  if (!get_call(env, info, 5, &c) || !count_arg(&c, 4, "slices", &slices) || !shape_arg(&c, 0, &s)) return NULL;
  const size_t in_floats = (size_t)s.batch * s.in_channels * s.in_h * s.in_w;
  const size_t out_floats = (size_t)s.batch * s.out_channels * s.out_h * s.out_w;
  const size_t weight_floats = (size_t)s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
  if (!f32_arg(&c, 1, "dy", out_floats, false, (float **)&t.a) ||
      !f32_arg(&c, 2, "weight", weight_floats, false, (float **)&t.b) || !f32_arg(&c, 3, "dx", in_floats, false, &t.out))
    return NULL;
  t.kernels = c.kernels;
  t.s = &s;
  if (!gemm_scratch(env, &t, c.kernels->gemm_scratch_floats())) return NULL;
  pool_run(&get_state(env)->pool, run_conv2d_backward_input, &t, slices);
  return undefined(env);
}

/* conv2dBackwardWeight(geometry, x, dy, dw, slices) */
static napi_value js_conv2d_backward_weight(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  rk_conv2d_shape s;
  gemm_task t;
  if (!get_call(env, info, 5, &c) || !count_arg(&c, 4, "slices", &slices) || !shape_arg(&c, 0, &s)) return NULL;
  const size_t in_floats = (size_t)s.batch * s.in_channels * s.in_h * s.in_w;
  const size_t out_floats = (size_t)s.batch * s.out_channels * s.out_h * s.out_w;
  const size_t weight_floats = (size_t)s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
  if (!f32_arg(&c, 1, "x", in_floats, false, (float **)&t.a) || !f32_arg(&c, 2, "dy", out_floats, false, (float **)&t.b) ||
      !f32_arg(&c, 3, "dw", weight_floats, false, &t.out))
    return NULL;
  t.kernels = c.kernels;
  t.s = &s;
  if (!gemm_scratch(env, &t, c.kernels->conv2d_backward_weight_scratch_floats(&s))) return NULL;
  pool_run(&get_state(env)->pool, run_conv2d_backward_weight, &t, slices);
  return undefined(env);
}

/* matmul(a, b, m, n, k, flags, c, slices): c (m × n) = op(a) · op(b), flags RK_TRANS_A | RK_TRANS_B */
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  gemm_task t;
  int64_t m, n, k, flags;
  if (!get_call(env, info, 8, &c) || !count_arg(&c, 7, "slices", &slices) || !int_arg(&c, 2, "m", 1, &m) || !int_arg(&c, 3, "n", 1, &n) ||
      !int_arg(&c, 4, "k", 0, &k) || !int_arg(&c, 5, "flags", 0, &flags) ||
      !f32_arg(&c, 0, "a", (size_t)(m * k), false, (float **)&t.a) ||
      !f32_arg(&c, 1, "b", (size_t)(k * n), false, (float **)&t.b) || !f32_arg(&c, 6, "c", (size_t)(m * n), false, &t.out))
    return NULL;
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) return fail(env, "matmul", "is too large"), NULL;
  t.kernels = c.kernels;
  t.s = NULL;
  t.m = (int32_t)m;
  t.n = (int32_t)n;
  t.k = (int32_t)k;
  t.flags = (int32_t)flags & (RK_TRANS_A | RK_TRANS_B);
  if (!gemm_scratch(env, &t, c.kernels->gemm_scratch_floats())) return NULL;
  pool_run(&get_state(env)->pool, run_matmul, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const float *x, *dy, *gamma;
  const double *mean, *inv_std;
  int32_t batch, channels, plane;
  float *dx, *dgamma, *dbeta; /* channel sums: dbeta */
} norm_task;

static void run_channel_sums(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const norm_task *t = ctx;
  t->kernels->channel_sums(t->dy, t->batch, t->channels, t->plane, t->dbeta, tid, nthreads);
}

static void run_batch_norm_backward(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const norm_task *t = ctx;
  t->kernels->batch_norm_backward(t->x, t->dy, t->mean, t->inv_std, t->gamma, t->batch, t->channels, t->plane, t->dx,
                                  t->dgamma, t->dbeta, tid, nthreads);
}

/* Reads batch, channels and plane at argv[i .. i + 2]. */
static bool planes_args(call_info *c, size_t i, norm_task *t) {
  int64_t batch, channels, plane;
  if (!int_arg(c, i, "batch", 0, &batch) || !int_arg(c, i + 1, "channels", 1, &channels) ||
      !int_arg(c, i + 2, "plane", 0, &plane))
    return false;
  if (batch > INT32_MAX || channels > INT32_MAX || plane > INT32_MAX) return fail(c->env, "shape", "is too large");
  t->batch = (int32_t)batch;
  t->channels = (int32_t)channels;
  t->plane = (int32_t)plane;
  return true;
}

/* channelSums(dy, batch, channels, plane, sums, slices) */
static napi_value js_channel_sums(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  norm_task t;
  if (!get_call(env, info, 6, &c) || !count_arg(&c, 5, "slices", &slices) || !planes_args(&c, 1, &t) ||
      !f32_arg(&c, 0, "dy", (size_t)t.batch * t.channels * t.plane, false, (float **)&t.dy) ||
      !f32_arg(&c, 4, "sums", (size_t)t.channels, false, &t.dbeta))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_channel_sums, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const float *x;
  int32_t batch, channels, plane;
  double *mean, *variance;
} moments_task;

static void run_channel_moments(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const moments_task *t = ctx;
  t->kernels->channel_moments(t->x, t->batch, t->channels, t->plane, t->mean, t->variance, tid, nthreads);
}

/* channelMoments(x, batch, channels, plane, mean, variance, slices): mean and variance Float64Arrays of C */
static napi_value js_channel_moments(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  norm_task shape;
  moments_task t;
  if (!get_call(env, info, 7, &c) || !count_arg(&c, 6, "slices", &slices) || !planes_args(&c, 1, &shape)) return NULL;
  t.batch = shape.batch;
  t.channels = shape.channels;
  t.plane = shape.plane;
  if (!f32_arg(&c, 0, "x", (size_t)t.batch * t.channels * t.plane, false, (float **)&t.x) ||
      !typed_arg(env, c.argv[4], napi_float64_array, "mean", (size_t)t.channels, false, (void **)&t.mean) ||
      !typed_arg(env, c.argv[5], napi_float64_array, "variance", (size_t)t.channels, false, (void **)&t.variance))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_channel_moments, &t, slices);
  return undefined(env);
}

/* batchNormBackward(x, dy, mean, invStd, gamma | null, batch, channels, plane, dx, dgamma, dbeta, slices):
   mean and invStd Float64Arrays of C */
static napi_value js_batch_norm_backward(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  norm_task t;
  if (!get_call(env, info, 12, &c) || !count_arg(&c, 11, "slices", &slices) || !planes_args(&c, 5, &t)) return NULL;
  const size_t floats = (size_t)t.batch * t.channels * t.plane;
  if (!f32_arg(&c, 0, "x", floats, false, (float **)&t.x) || !f32_arg(&c, 1, "dy", floats, false, (float **)&t.dy) ||
      !typed_arg(env, c.argv[2], napi_float64_array, "mean", (size_t)t.channels, false, (void **)&t.mean) ||
      !typed_arg(env, c.argv[3], napi_float64_array, "invStd", (size_t)t.channels, false, (void **)&t.inv_std) ||
      !f32_arg(&c, 4, "gamma", (size_t)t.channels, true, (float **)&t.gamma) ||
      !f32_arg(&c, 8, "dx", floats, false, &t.dx) || !f32_arg(&c, 9, "dgamma", (size_t)t.channels, false, &t.dgamma) ||
      !f32_arg(&c, 10, "dbeta", (size_t)t.channels, false, &t.dbeta))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_batch_norm_backward, &t, slices);
  return undefined(env);
}

typedef struct {
  const kernel_table *kernels;
  const float *x, *dy;
  int32_t d[14];
  int64_t n;
  float *dx;
} pool_backward_task;

static void run_max_pool2d_backward(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const pool_backward_task *t = ctx;
  const int32_t *d = t->d;
  t->kernels->max_pool2d_backward(t->x, t->dy, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11],
                                  d[12], d[13], t->dx, tid, nthreads);
}

static void run_adaptive_avg_pool2d_backward(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const pool_backward_task *t = ctx;
  const int32_t *d = t->d;
  t->kernels->adaptive_avg_pool2d_backward(t->dy, d[0], d[1], d[2], d[3], d[4], d[5], t->dx, tid, nthreads);
}

static void run_relu_backward(void *ctx, int32_t tid, int32_t nthreads, int32_t thread) {
  (void)thread;
  const pool_backward_task *t = ctx;
  t->kernels->relu_backward(t->x, t->dy, t->n, t->dx, tid, nthreads);
}

/* maxPool2dBackward(x, dy, dims, dx, slices), dims as maxPool2d's */
static napi_value js_max_pool2d_backward(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  pool_backward_task t;
  int32_t *d;
  if (!get_call(env, info, 5, &c) || !count_arg(&c, 4, "slices", &slices) || !typed_arg(env, c.argv[2], napi_int32_array, "dims", 14, false, (void **)&d))
    return NULL;
  memcpy(t.d, d, sizeof t.d);
  for (int j = 0; j < 14; j++)
    if (d[j] < ((j == 8 || j == 9) ? 0 : 1)) return fail(env, "dims", "has a non-positive entry"), NULL;
  const int64_t planes = (int64_t)d[0] * d[1];
  if (!f32_arg(&c, 0, "x", (size_t)(planes * d[2] * d[3]), false, (float **)&t.x) ||
      !f32_arg(&c, 1, "dy", (size_t)(planes * d[12] * d[13]), false, (float **)&t.dy) ||
      !f32_arg(&c, 3, "dx", (size_t)(planes * d[2] * d[3]), false, &t.dx))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_max_pool2d_backward, &t, slices);
  return undefined(env);
}

/* adaptiveAvgPool2dBackward(dy, dims, dx, slices), dims: batch, channels, in_h, in_w, out_h, out_w */
static napi_value js_adaptive_avg_pool2d_backward(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  pool_backward_task t;
  int32_t *d;
  if (!get_call(env, info, 4, &c) || !count_arg(&c, 3, "slices", &slices) || !typed_arg(env, c.argv[1], napi_int32_array, "dims", 6, false, (void **)&d))
    return NULL;
  memcpy(t.d, d, 6 * sizeof(int32_t));
  for (int j = 0; j < 6; j++)
    if (d[j] < 1) return fail(env, "dims", "has a non-positive entry"), NULL;
  const int64_t planes = (int64_t)d[0] * d[1];
  if (!f32_arg(&c, 0, "dy", (size_t)(planes * d[4] * d[5]), false, (float **)&t.dy) ||
      !f32_arg(&c, 2, "dx", (size_t)(planes * d[2] * d[3]), false, &t.dx))
    return NULL;
  t.kernels = c.kernels;
  pool_run(&get_state(env)->pool, run_adaptive_avg_pool2d_backward, &t, slices);
  return undefined(env);
}

/* reluBackward(y, dy, dx, slices), over dx's length */
static napi_value js_relu_backward(napi_env env, napi_callback_info info) {
  call_info c;
  int32_t slices;
  pool_backward_task t;
  size_t n;
  if (!get_call(env, info, 4, &c) || !count_arg(&c, 3, "slices", &slices) || !f32_arg(&c, 2, "dx", 0, false, &t.dx)) return NULL;
  napi_get_typedarray_info(env, c.argv[2], NULL, &n, NULL, NULL, NULL);
  if (!f32_arg(&c, 0, "y", n, false, (float **)&t.x) || !f32_arg(&c, 1, "dy", n, false, (float **)&t.dy)) return NULL;
  t.kernels = c.kernels;
  t.n = (int64_t)n;
  pool_run(&get_state(env)->pool, run_relu_backward, &t, slices);
  return undefined(env);
}

/* crc32(bytes, crc): zlib's crc32 of a Uint8Array after a previous sum (0 to start); exported
   only where the CPU runs the carry-less folding (crc32.c), else zlib's is as fast. */
static napi_value js_crc32(napi_env env, napi_callback_info info) {
  call_info c;
  int64_t previous;
  napi_typedarray_type type;
  size_t length;
  void *data = NULL;
  if (!get_call(env, info, 2, &c) || !int_arg(&c, 1, "crc", 0, &previous)) return NULL;
  if (previous > 0xffffffffLL) return fail(env, "crc", "is more than 32 bits"), NULL;
  bool is_typed = false;
  napi_is_typedarray(env, c.argv[0], &is_typed);
  if (!is_typed || napi_get_typedarray_info(env, c.argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return fail(env, "bytes", "must be a Uint8Array"), NULL;
  return number(env, (double)crc32_update((uint32_t)previous, data, length));
}

/* setThreads(n): the pool's size from now on (workers restart at the next run). */
static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  call_info c;
  int64_t n;
  if (!get_call(env, info, 1, &c) || !int_arg(&c, 0, "threads", 1, &n)) return NULL;
  if (n > 256) return fail(env, "threads", "is more than 256"), NULL;
  addon_state *state = get_state(env);
  if (state->pool.threads != (int32_t)n) {
    pool_stop_workers(&state->pool);
    state->pool.threads = (int32_t)n;
  }
  return undefined(env);
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  return number(env, get_state(env)->pool.threads);
}

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon_state *state = data;
  pool_destroy(&state->pool);
  free(state->scratch);
  free(state);
}

static napi_value variant_object(napi_env env, const kernel_table *kernels) {
  const napi_property_descriptor functions[] = {
      {"isa", NULL, js_isa, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2dPacking", NULL, js_conv2d_packing, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2dPackedFloats", NULL, js_conv2d_packed_floats, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2dPack", NULL, js_conv2d_pack, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2d", NULL, js_conv2d, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"maxPool2d", NULL, js_max_pool2d, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"adaptiveAvgPool2d", NULL, js_adaptive_avg_pool2d, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"linear", NULL, js_linear, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"channelAffine", NULL, js_channel_affine, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"relu", NULL, js_relu, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2dBackwardInput", NULL, js_conv2d_backward_input, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"conv2dBackwardWeight", NULL, js_conv2d_backward_weight, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"channelSums", NULL, js_channel_sums, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"channelMoments", NULL, js_channel_moments, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"batchNormBackward", NULL, js_batch_norm_backward, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"maxPool2dBackward", NULL, js_max_pool2d_backward, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"adaptiveAvgPool2dBackward", NULL, js_adaptive_avg_pool2d_backward, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"reluBackward", NULL, js_relu_backward, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
      {"matmul", NULL, js_matmul, NULL, NULL, NULL, napi_enumerable, (void *)kernels},
  };
  napi_value object;
  napi_create_object(env, &object);
  napi_define_properties(env, object, sizeof functions / sizeof functions[0], functions);
  return object;
}

/* Output tensors are fresh ArrayBuffers of up to a few MiB per op, freed only when V8
   collects them, so glibc's heap grows by hundreds of MiB between collections and, with its
   default trim threshold, gives the top back to the kernel after each: every page is then
   faulted in and zeroed again (clear_page was 8% of a ResNet-50 forward). Keeping up to
   1 GiB of free heap and serving blocks up to 64 MiB from it reuses that memory instead
   (clear_page 0.3-1%). Process-wide (it is malloc's), set once when the addon loads;
   RESNET_NATIVE_MALLOC=default leaves glibc's settings alone. */
static void tune_malloc(void) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  const char *setting = getenv("RESNET_NATIVE_MALLOC");
  if (setting && strcmp(setting, "default") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
  pthread_once(&malloc_once, tune_malloc);
  addon_state *state = calloc(1, sizeof *state);
  if (!state) return NULL;
  pool_init(&state->pool, cpu_count());
  napi_set_instance_data(env, state, finalize_state, NULL);

  napi_value variants, best;
  napi_create_object(env, &variants);
  const kernel_table *best_kernels = &portable_kernels;
  /* Best first: __builtin_cpu_supports also checks that the OS saves the registers. */
#if defined(RK_HAVE_AVX2_VARIANT) || defined(RK_HAVE_AVX512_VARIANT)
  __builtin_cpu_init();
#endif
#if defined(RK_HAVE_AVX512_VARIANT)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
    napi_set_named_property(env, variants, avx512_kernels.isa(), variant_object(env, &avx512_kernels));
    best_kernels = &avx512_kernels;
  }
#endif
#if defined(RK_HAVE_AVX2_VARIANT)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    napi_set_named_property(env, variants, avx2_kernels.isa(), variant_object(env, &avx2_kernels));
    if (best_kernels == &portable_kernels) best_kernels = &avx2_kernels;
  }
#endif
  napi_set_named_property(env, variants, portable_kernels.isa(), variant_object(env, &portable_kernels));
  napi_create_string_utf8(env, best_kernels->isa(), NAPI_AUTO_LENGTH, &best);

  const napi_property_descriptor properties[] = {
      {"variants", NULL, NULL, NULL, NULL, variants, napi_enumerable, NULL},
      {"best", NULL, NULL, NULL, NULL, best, napi_enumerable, NULL},
      {"setThreads", NULL, js_set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, js_get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"crc32", NULL, js_crc32, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  /* crc32 last: left out where the CPU has no carry-less multiply. */
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0] - (crc32_fast() ? 0 : 1), properties);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
