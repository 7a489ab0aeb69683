/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): NEON on arm64, 4 floats a vector. */
#include <arm_neon.h>

#include "blocking-128bit.h"

#define VL 4
typedef float32x4_t vec;
#define vec_zero() vdupq_n_f32(0.0f)
#define vec_load(p) vld1q_f32(p)
#define vec_store(p, v) vst1q_f32(p, v)
#define vec_splat_load(p) vld1q_dup_f32(p)
#define vec_add(a, b) vaddq_f32(a, b)
#define vec_madd(a, b, acc) vfmaq_f32(acc, a, b)
#define vec_relu(v) vbslq_f32(vcltq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), v)
#define RK_TILE_ISA neon
