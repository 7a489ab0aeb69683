/* Part of the kernels translation unit (csrc/kernels.c includes it; never compiled alone): a general packed GEMM on the micro-kernels of f32-gemm.c (operands read through row and column strides, so transposes cost nothing but the packing), used by matmul and by the convolution's gradients. */

/* Packs A (rows × kc), A(i, k) = a[i·rs + k·cs], into MR-row panels [panel][k][MR], zero past
   the last row: what the micro-kernel reads as its left operand. */
static void pack_a(const float *a, size_t rs, size_t cs, int32_t rows, int32_t kc, float *dst) {
  for (int32_t i0 = 0; i0 < rows; i0 += MR) {
    float *panel = dst + (size_t)(i0 / MR) * kc * MR;
    const int32_t mr = min_i32(MR, rows - i0);
    if (cs == 1) {
      /* Rows of A contiguous (dy in the weight gradient): one row at a time, front to back. */
      for (int32_t r = 0; r < MR; r++) {
        if (r >= mr) {
          for (int32_t k = 0; k < kc; k++) panel[(size_t)k * MR + r] = 0.0f;
          continue;
        }
        const float *src = a + (size_t)(i0 + r) * rs;
        for (int32_t k = 0; k < kc; k++) panel[(size_t)k * MR + r] = src[k];
      }
    } else {
      /* Columns of A contiguous (the transposed weight of the input gradient): MR at a time. */
      for (int32_t k = 0; k < kc; k++) {
        const float *src = a + (size_t)k * cs + (size_t)i0 * rs;
        float *d = panel + (size_t)k * MR;
        for (int32_t r = 0; r < MR; r++) d[r] = r < mr ? src[(size_t)r * rs] : 0.0f;
      }
    }
  }
}

/* Packs B (kc × cols), B(k, j) = b[k·rs + j·cs], into NR-column panels [panel][k][NR], zero
   past the last column: the micro-kernel's right operand. */
static void pack_b(const float *b, size_t rs, size_t cs, int32_t kc, int32_t cols, float *dst) {
  if (cs == 1) {
    pack_planes(b, rs, kc, cols, dst);
    return;
  }
  for (int32_t j0 = 0; j0 < cols; j0 += NR) {
    float *panel = dst + (size_t)(j0 / NR) * kc * NR;
    for (int32_t l = 0; l < NR; l++) {
      /* One column of B at a time: contiguous when B is stored transposed (rs = 1). */
      if (j0 + l >= cols) {
        for (int32_t k = 0; k < kc; k++) panel[(size_t)k * NR + l] = 0.0f;
        continue;
      }
      const float *src = b + (size_t)(j0 + l) * cs;
      for (int32_t k = 0; k < kc; k++) panel[(size_t)k * NR + l] = src[(size_t)k * rs];
    }
  }
}

/* c (rows × cols, row stride ldc) = [c +] A · B for one K block of depth kc, A and B packed
   by pack_a and pack_b: each B panel (kc × NR, L1) meets every A panel (kc × MR, L2). */
static void gemm_packed(int32_t rows, int32_t cols, int32_t kc, const float *a, const float *b, float *c, size_t ldc,
                        int32_t accumulate) {
  for (int32_t j = 0; j < cols; j += NR) {
    const int32_t nr = min_i32(NR, cols - j);
    const float *bj = b + (size_t)(j / NR) * kc * NR;
    for (int32_t i = 0; i < rows; i += MR)
      gemm_tile(min_i32(MR, rows - i), nr, (size_t)kc, a + (size_t)(i / MR) * kc * MR, bj, NR, 0,
                c + (size_t)i * ldc + j, ldc, accumulate, 0);
  }
}

/* One thread's scratch for the packed GEMMs: an A block (MC × KC), a B block (KC × NC) and a
   C block (MC × NC, the input gradient's columns before col2im), each whole cache lines. */
#define GEMM_A_FLOATS ((size_t)MC * KC)
#define GEMM_B_FLOATS ((size_t)KC * NC)
#define GEMM_C_FLOATS ((size_t)MC * NC)

size_t RK_API(gemm_scratch_floats)(void) { return GEMM_A_FLOATS + GEMM_B_FLOATS + GEMM_C_FLOATS; }

/* c (m × n) = op(a) · op(b), op(a) (m × k), op(b) (k × n); RK_TRANS_A: a is stored (k × m),
   RK_TRANS_B: b is stored (n × k). Threads split the columns of c in whole NR panels where
   there are enough of them, else its rows in whole MR panels: disjoint parts of c, and each
   thread packs only the part of B (or A) it multiplies. BLIS loop order: NC columns → KC
   depth (B packed) → MC rows (A packed) → tiles. */
void RK_API(matmul)(const float *a, const float *b, int32_t m, int32_t n, int32_t k, int32_t flags, float *c,
                    float *scratch, int32_t tid, int32_t nthreads) {
  const size_t a_rs = (flags & RK_TRANS_A) ? 1 : (size_t)k, a_cs = (flags & RK_TRANS_A) ? (size_t)m : 1;
  const size_t b_rs = (flags & RK_TRANS_B) ? 1 : (size_t)n, b_cs = (flags & RK_TRANS_B) ? (size_t)k : 1;
  int32_t i0 = 0, i1 = m, j0 = 0, j1 = n;
  const int32_t col_panels = ceil_div(n, NR);
  if (col_panels >= nthreads) {
    j0 = (int32_t)((int64_t)col_panels * tid / nthreads) * NR;
    j1 = min_i32(n, (int32_t)((int64_t)col_panels * (tid + 1) / nthreads) * NR);
  } else if (!row_slice(m, tid, nthreads, &i0, &i1)) {
    return;
  }
  if (k == 0) {
    for (int32_t i = i0; i < i1; i++)
      for (int32_t j = j0; j < j1; j++) c[(size_t)i * n + j] = 0.0f;
    return;
  }
  float *a_block = scratch, *b_block = scratch + GEMM_A_FLOATS;
  for (int32_t jc = j0; jc < j1; jc += NC) {
    const int32_t nc = min_i32(NC, j1 - jc);
    for (int32_t pk = 0; pk < k; pk += KC) {
      const int32_t kc = min_i32(KC, k - pk);
      pack_b(b + (size_t)pk * b_rs + (size_t)jc * b_cs, b_rs, b_cs, kc, nc, b_block);
      for (int32_t ic = i0; ic < i1; ic += MC) {
        const int32_t mc = min_i32(MC, i1 - ic);
        pack_a(a + (size_t)ic * a_rs + (size_t)pk * a_cs, a_rs, a_cs, mc, kc, a_block);
        gemm_packed(mc, nc, kc, a_block, b_block, c + (size_t)ic * n + jc, (size_t)n, pk > 0);
      }
    }
  }
}
