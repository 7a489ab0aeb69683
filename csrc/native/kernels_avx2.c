/* kernels.c built for AVX2+FMA (binding.gyp compiles this file with -mavx2 -mfma), with every
   entry point renamed rk_avx2_* so that it links beside the portable build; the addon picks
   one at run time with __builtin_cpu_supports. */
#define RK_API(name) rk_avx2_##name
#include "../kernels.c"
