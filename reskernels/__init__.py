"""reskernels -- a symbolic-numeric verification suite for the infinite-width kernels (NNGP, NTK)
of residual networks.

The contract's names (``docs/conventions.md``)::

    from reskernels import MLP, ResNet, CNN, ResCNN, DenseNet   # frozen architecture specs
    from reskernels import kernel_expr                   # exact sympy kernels in t = <x, z>
    from reskernels import gram, eigenvalues             # float64 Gram matrices; certified spectra

Subpackages: :mod:`reskernels.theory` (specs, kernel steps, activations, sympy),
:mod:`reskernels.numerics` (float64 / mpmath / numba / CuPy engines, spectra, Monte Carlo) and
:mod:`reskernels.proofs_check` (claim checks, report, conformance kit, the ``reskernels`` command).

>>> import numpy as np
>>> from reskernels import MLP, gram
>>> float(gram(MLP(depth=3), np.array([[0.6, 0.8]]))[0, 0])    # NTK(x, x) = L + 1 on the sphere
4.0
"""
import os as _os

# In an installed distribution the subpackages live inside this folder.  In a source checkout they
# are the repository's top-level folders theory/, numerics/, proofs_check/ (pyproject's package-dir
# maps them); make them importable as reskernels.* there too, so the checkout runs uninstalled.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if (not _os.path.isdir(_os.path.join(_here, "theory"))
        and _os.path.isfile(_os.path.join(_root, "theory", "__init__.py"))
        and _os.path.isfile(_os.path.join(_root, "pyproject.toml"))):
    __path__.append(_root)  # noqa: F821  (the package's own __path__)

from .theory import CNN, MLP, DenseNet, ResCNN, ResNet, kernel_expr  # noqa: E402
from .numerics import eigenvalues, gram  # noqa: E402
from . import activations  # noqa: E402
from .theory import layers  # noqa: E402

__version__ = "0.2.0"
__all__ = ["MLP", "ResNet", "CNN", "ResCNN", "DenseNet", "kernel_expr", "gram", "eigenvalues",
           "activations", "layers", "__version__"]
