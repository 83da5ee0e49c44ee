"""One module per paper; importing them fills :data:`proofs_check.registry.REGISTRY`."""
from . import background, barzilai, belfer, bietti, experiments, huang, littwin, tirer  # noqa: F401
