"""reskernels.proofs_check -- one check per paper claim, each returning an honest verdict.

>>> from proofs_check import run_claims
>>> [v.status for v in run_claims(["ARORA-FC-NTK"])]
['holds']
"""
from .registry import REGISTRY, Claim, claim, load_all
from .verdict import Measurement, Verdict


def run_claims(ids=None, level: str = "quick", papers=None, progress: bool = False):
    """Run claims by id and/or paper; returns their :class:`Verdict` objects."""
    from .runner import run, select
    return run(select(ids, papers), level, progress=progress)


__all__ = ["REGISTRY", "Claim", "claim", "load_all", "Measurement", "Verdict", "run_claims"]
