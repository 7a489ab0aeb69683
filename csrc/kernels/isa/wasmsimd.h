/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): WebAssembly SIMD128 (optionally relaxed), 4 floats a vector. */
#include <wasm_simd128.h>

/* 6 rows × 2 vectors with relaxed SIMD: 12 accumulators, the 2 vectors of B and one broadcast
   of A, 15 of the 16 xmm registers V8 has on x86-64 (it keeps one for itself). 12 FMAs per 8
   loads instead of 8 per 6 amortise the loop's address arithmetic and V8's loop check, which
   set the pace of the 4-row tile: ResNet-50 at batch 1, one thread, 0.875 of its time,
   ResNet-18 0.82 (same process, the two builds alternating). It fits only because
   build-wasm.sh has clang emit each row's broadcast just before its two FMAs (source order):
   clang's default schedule hoists all the broadcasts and V8 spills (1.6× slower), as 7 rows
   do. Plain SIMD128 multiplies and adds apart, one more register a row in flight: 5 rows
   (0.88 and 0.95 of the 4-row tile's time; 6 rows spill, 1.12-1.23×). */
#if defined(__wasm_relaxed_simd__)
#define MR 6
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6)
#else
#define MR 5
#define RK_TILE_ROWS(X) X(1) X(2) X(3) X(4) X(5)
#endif
#include "blocking-128bit.h"

#define VL 4
typedef v128_t vec;
#define vec_zero() wasm_f32x4_splat(0.0f)
#define vec_load(p) wasm_v128_load(p)
#define vec_store(p, v) wasm_v128_store(p, v)
#define vec_splat_load(p) wasm_v128_load32_splat(p)
#define vec_add(a, b) wasm_f32x4_add(a, b)
/* pmax(v, 0) = v < 0 ? 0 : v. */
#define vec_relu(v) wasm_f32x4_pmax(v, wasm_f32x4_splat(0.0f))
#if defined(__wasm_relaxed_simd__)
/* a·b + acc, fused or not as the engine likes. The builtin, not wasm_f32x4_relaxed_madd:
   clang 16's wasm_simd128.h has no relaxed intrinsics yet. */
typedef float rk_f32x4 __attribute__((vector_size(16)));
#define vec_madd(a, b, acc) \
  ((v128_t)__builtin_wasm_relaxed_madd_f32x4((rk_f32x4)(a), (rk_f32x4)(b), (rk_f32x4)(acc)))
#define RK_TILE_ISA wasmrelaxedsimd
#else
#define vec_madd(a, b, acc) wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#define RK_TILE_ISA wasmsimd
#endif
