#!/usr/bin/env bash
# Builds the WebAssembly kernels from csrc/kernels.c (the same source as the native addon):
#   wasm/kernels.wasm       SIMD128 + relaxed SIMD (f32x4.relaxed_madd), threads
#   wasm/kernels-simd.wasm  SIMD128 only, the fallback where relaxed SIMD does not validate
# Both import one shared memory (env.memory) so every worker thread runs on the same heap,
# and export __stack_pointer so each thread's instance can be given its own stack.
# The outputs are committed; scripts/check-wasm.sh rebuilds them and compares the bytes.
#
# usage: scripts/build-wasm.sh [OUT_DIR]      (default: wasm/)
# env:   CLANG (default clang-16), KERNELS_SRC (default csrc/kernels.c)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/wasm}"
clang="${CLANG:-clang-16}"
src="${KERNELS_SRC:-$root/csrc/kernels.c}"
mkdir -p "$out"

# Keep in step with src/backends/wasm/loader.ts (MEMORY_INITIAL_PAGES, MEMORY_MAX_PAGES, STACK_BYTES).
initial_memory=$((16 * 1024 * 1024))
max_memory=$((4 * 1024 * 1024 * 1024))
stack_bytes=$((1024 * 1024))

# Every entry point of RK_KERNELS in csrc/kernels.h (its X(type, name, ...) lines), as rk_<name>.
mapfile -t kernels < <(sed -n 's/^ *X([^,]*, *\([a-z0-9_]*\),.*/rk_\1/p' "$root/csrc/kernels.h")
[ "${#kernels[@]}" -gt 0 ] || { echo "build-wasm: no kernels found in csrc/kernels.h" >&2; exit 1; }
exports=("${kernels[@]}" __stack_pointer __heap_base)

cflags=(
  --target=wasm32 -O3 -ffreestanding -nostdlib -DNDEBUG
  -msimd128 -matomics -mbulk-memory -mmutable-globals -msign-ext -mnontrapping-fptoint
  -Wall -Wextra
  # Reproducible: no debug info, and no build path anywhere in the output.
  -g0 "-ffile-prefix-map=$root=."
  -I "$root/csrc"
  # Instructions in source order: the micro-kernel's rows each load their broadcast of A just
  # before using it, so its 12 accumulators, 2 vectors of B and 1 of A fit V8's 16 registers
  # (clang's default schedule loads all broadcasts first and V8 spills; see isa/wasmsimd.h).
  -mllvm -pre-RA-sched=source
)
ldflags=(
  -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory
  "-Wl,--initial-memory=$initial_memory" "-Wl,--max-memory=$max_memory"
  "-Wl,-z,stack-size=$stack_bytes" -Wl,--strip-debug
)
for name in "${exports[@]}"; do ldflags+=("-Wl,--export=$name"); done

"$clang" "${cflags[@]}" -mrelaxed-simd "${ldflags[@]}" -o "$out/kernels.wasm" "$src"
"$clang" "${cflags[@]}" "${ldflags[@]}" -o "$out/kernels-simd.wasm" "$src"
echo "built $out/kernels.wasm and $out/kernels-simd.wasm with $("$clang" --version | head -n 1)"
