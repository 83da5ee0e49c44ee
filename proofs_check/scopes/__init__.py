"""The scope maps of the claims whose conventions the papers leave open (docs/papers.md).

Each map states its criterion and its margin (positive: the claim holds at that convention point);
the machinery (sweep, region sentence, table, figure) is :mod:`reskernels.proofs_check.scope`.
Kernel values come from the public engines (:func:`reskernels.gram`, the finite-width networks of
:mod:`reskernels.numerics.montecarlo`); repeated Gram matrices within one process are cached.
One module per kind of measurement; importing this package imports every module of it, which
registers every map.
"""
import importlib
import pkgutil

from .data import ALPHA_SCALINGS, conv_data

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["ALPHA_SCALINGS", "conv_data"]
