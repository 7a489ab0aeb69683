/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): portable C, no vector layer: the tiles are plain loops. */

#define MR 4
#define NR 8
#define KC 256
#define MC (MR * 16)
#define NC (NR * 12)
