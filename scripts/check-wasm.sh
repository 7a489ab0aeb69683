#!/usr/bin/env bash
# CI check: rebuilds the committed wasm/*.wasm from csrc/kernels.c in a temporary directory
# and fails if any byte differs (someone changed the C source and did not rebuild, or built
# with another compiler). Skips, successfully, where clang-16 is not installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clang="${CLANG:-clang-16}"
if ! command -v "$clang" >/dev/null 2>&1; then
  echo "check-wasm: SKIPPED, $clang not found (apt-get install -y clang-16 lld-16 to run this check)"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/build-wasm.sh" "$tmp" >/dev/null

status=0
for file in kernels.wasm kernels-simd.wasm; do
  if cmp -s "$tmp/$file" "$root/wasm/$file"; then
    echo "check-wasm: wasm/$file is up to date"
  else
    echo "check-wasm: wasm/$file differs from a rebuild of csrc/kernels.c; run scripts/build-wasm.sh and commit the result" >&2
    status=1
  fi
done
exit $status
