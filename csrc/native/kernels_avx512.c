/* kernels.c built for AVX-512F (binding.gyp compiles this file with -mavx512f -mfma), with
   every entry point renamed rk_avx512_* so that it links beside the AVX2 and portable
   builds; the addon picks one at run time with __builtin_cpu_supports. */
#define RK_API(name) rk_avx512_##name
#include "../kernels.c"
