/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): portable C, no vector layer: the tiles are plain loops. */

#include "blocking-128bit.h"
