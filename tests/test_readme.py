"""Every ```python block of README.md runs as written, in order, in one namespace (as a reader pastes
them into one session), in a scratch directory.  A block that needs an optional dependency this
environment lacks (CuPy with a GPU, Dask) is skipped with the reason; nothing else may be skipped."""
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md")) as fh:
    README = fh.read()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def _missing(block):
    if 'backend="cupy"' in block:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
        except Exception:
            return "CuPy with a CUDA device"
    if "dask" in block and importlib.util.find_spec("dask") is None:
        return "dask.distributed"
    return None


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert len(BLOCKS) >= 8
    ns, skipped = {}, []
    for i, block in enumerate(BLOCKS):
        why = _missing(block)
        if why:
            skipped.append((i, why))
            continue
        exec(compile(block, f"README.md block {i}", "exec"), ns)
    assert {why for _, why in skipped} <= {"CuPy with a CUDA device", "dask.distributed"}


def test_ci_runs_the_readme_test_command():
    """The README's test command (its ```bash block with pytest) is the one `.ci/run` runs."""
    readme = [ln for block in re.findall(r"```bash\n(.*?)```", README, re.S)
              for ln in block.splitlines() if "pytest" in ln]
    with open(os.path.join(ROOT, ".ci", "run")) as fh:
        ci = [ln for ln in fh if re.search(r"python -m pytest ", ln)]
    assert len(readme) == 1 and len(ci) == 1, (readme, ci)
    args = lambda line: [a for a in line.split("pytest", 1)[1].split() if a != "-q"]
    assert args(readme[0]) == args(ci[0]), (readme[0], ci[0])
