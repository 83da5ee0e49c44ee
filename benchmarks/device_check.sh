#!/usr/bin/env bash
# The GPU checks of the speed issue as one prepared run for a machine with an NVIDIA GPU (CuPy and
# numba-cuda installed, as in the device image): the fused kernel's tests on the device, then the
# benchmark of both GPU backends against the issue's target (0.2 ms an entry, ResCNN(10) / CNN(10)
# gap on 32x32x3) with the limit column, then one end-to-end n = 256 run of the fused kernel.
# Output: stdout, and $OUT/device_check.log when OUT is set.  At most ~9.5 minutes (each step has a
# timeout: 180, 200 and 180 s), so that it fits one call of a lent device machine.
#
#     bash benchmarks/device_check.sh
set -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="${OUT:-/tmp}/device_check.log"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python3 -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)"
  echo "== tests on the device"
  timeout 180 python3 -m pytest -q -p no:cacheprovider -rs tests/numerics/test_conv_cuda.py
  echo "== bench_gpu (n = 64, both GPU backends)"
  timeout 200 python3 benchmarks/bench_gpu.py --n 64 --backends cupy cuda
  echo "== bench_gpu (fused kernel, n = 256 end to end)"
  timeout 180 python3 benchmarks/bench_gpu.py --n 16 --n-end-to-end 256 --backends cuda
} 2>&1 | tee "$LOG"
