"""Reference data files: read them with their provenance (docs/development.md §5).

Every file in ``numerics/data`` is JSON with the quantity, the method, the source,
the provenance tag and the precision; values are decimal strings, parsed with
mpmath at extra precision, never as floats.
"""
from __future__ import annotations

import json
from importlib import resources

import mpmath

from reskernels.theory.arch import spec_from_dict


def load(name: str) -> dict:
    """Load ``numerics/data/<name>.json``."""
    with resources.files("reskernels.numerics").joinpath("data", f"{name}.json").open() as fh:
        return json.load(fh)


def arch_from_dict(d: dict):
    """Build a spec from its JSON description {"class": ..., fields...} (the spec registry)."""
    return spec_from_dict(d)


def parse_values(values, dps: int = 50):
    """Decimal strings -> mpf, read at ``dps + 8`` digits."""
    with mpmath.workdps(dps + 8):
        return [mpmath.mpf(v) for v in values]
