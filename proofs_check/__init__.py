"""reskernels.proofs_check -- one check per paper claim, each returning an honest verdict.

>>> from reskernels.proofs_check import run_claims
>>> [v.status for v in run_claims(["ARORA-FC-NTK"])]
['holds']
"""
if __name__ != "reskernels.proofs_check":  # the folder proofs_check/ installs as reskernels.proofs_check only
    raise ImportError(f"proofs_check/ is the subpackage reskernels.proofs_check: use 'import reskernels.proofs_check' "
                      "(pip install . from the repository)")
from .registry import REGISTRY, Claim, claim, load_all
from .verdict import Measurement, Verdict


def run_claims(ids=None, level: str = "quick", papers=None, progress: bool = False):
    """Run claims by id and/or paper; returns their :class:`Verdict` objects."""
    from .runner import run, select
    return run(select(ids, papers), level, progress=progress)


__all__ = ["REGISTRY", "Claim", "claim", "load_all", "Measurement", "Verdict", "run_claims"]
