/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): which ISA this build is for, its register tile and cache blocking, and small helpers. */

/* Register tile MR × NR of the micro-kernel, and the cache blocking around it:
   KC rows of B per block (a KC × NR panel is 16 KiB with AVX2: half of L1),
   MC rows of A per block (MC × KC stays in L2 while the B panels stream),
   at most NC pixels per packed B block (KC × NC, also L2; a thread's pixels are cut into
   equal chunks of whole panels, so a 14×14 plane is one chunk and a 28×28 one four, not
   several full chunks and a sliver that streams all of A again for one panel). */
#if defined(__AVX512F__) && defined(__FMA__)
#define RK_AVX512 1
#define RK_VECTOR_TILES 1
#include "isa/avx512f.h"
#elif defined(__AVX2__) && defined(__FMA__)
#define RK_AVX2 1
#define RK_VECTOR_TILES 1
#include "isa/avx2-fma.h"
#elif defined(__wasm_simd128__)
#define RK_VEC4 1
#define RK_VECTOR_TILES 1
#include "isa/wasmsimd.h"
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define RK_VEC4 1
#define RK_VECTOR_TILES 1
#include "isa/neon.h"
#else
#include "isa/scalar.h"
#endif

#define RK_INLINE static inline __attribute__((always_inline))

static inline int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }
