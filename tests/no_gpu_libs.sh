#!/bin/sh
# The shared library must load and work where no GPU library is installed:
# the CUDA and OpenCL backends open their drivers with dlopen at run time, so
# the library itself may not depend on any of them.
#
#   no_gpu_libs.sh LIBTENSORBRIDGE_SO TEST_EXECUTABLE
#
# 1. readelf -d (or objdump -p): no NEEDED entry names a CUDA/OpenCL library;
#    ldd, where present: nothing pulls one in indirectly either;
# 2. nm -D: no undefined cu*/cl* driver symbol waits for a library to bind;
# 3. the CPU test executable runs with an empty environment: no
#    LD_LIBRARY_PATH (so no CUDA library directory), no CUDA variables, and
#    CUDA_VISIBLE_DEVICES empty so that a machine with a driver in the
#    system's paths shows no device either.
# Exit 77 (skipped) when the binary tools are missing.
set -eu

lib=${1:?usage: no_gpu_libs.sh LIB EXE}
exe=${2:?usage: no_gpu_libs.sh LIB EXE}
gpu_libs='libcuda[.]|libcudart|libnvrtc|libnvidia|libOpenCL|libnvJitLink'

if command -v readelf >/dev/null 2>&1; then
  needed=$(readelf -d "$lib" | grep NEEDED || true)
elif command -v objdump >/dev/null 2>&1; then
  needed=$(objdump -p "$lib" | grep NEEDED || true)
else
  echo "skipped: neither readelf nor objdump is installed"
  exit 77
fi
echo "NEEDED entries of $lib:"
echo "$needed"
if echo "$needed" | grep -Eq "$gpu_libs"; then
  echo "FAIL: $lib links a GPU library directly"
  exit 1
fi

if command -v ldd >/dev/null 2>&1; then
  if ldd "$lib" | grep -Eq "$gpu_libs"; then
    echo "FAIL: $lib pulls in a GPU library indirectly:"
    ldd "$lib"
    exit 1
  fi
fi

if command -v nm >/dev/null 2>&1; then
  undefined=$(nm -D --undefined-only "$lib" | awk '{print $NF}' | grep -E '^(cu|cl)[A-Z]' || true)
  if [ -n "$undefined" ]; then
    echo "FAIL: $lib expects driver symbols from a linked library:"
    echo "$undefined"
    exit 1
  fi
fi

echo "running $exe with an empty environment (no LD_LIBRARY_PATH, no visible CUDA device)"
env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH= CUDA_VISIBLE_DEVICES= "$exe"
echo "ok: $lib needs no GPU library"
