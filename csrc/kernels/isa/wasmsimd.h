/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): WebAssembly SIMD128 (optionally relaxed), 4 floats a vector. */
#include <wasm_simd128.h>

#include "blocking-4x8.h"

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
