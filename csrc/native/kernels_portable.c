/* kernels.c built for the baseline ISA of the target (SSE2 on x86-64, NEON on arm64), with
   its entry points under their own names rk_*. */
#include "../kernels.c"
