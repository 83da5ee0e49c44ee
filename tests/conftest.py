"""Hypothesis profiles, markers and the autouse precision fence (docs/development.md §6)."""
import os

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _restore_precision():
    """Restore mpmath's global precision and numpy's error state around every test."""
    prec = mpmath.mp.prec
    old = np.seterr(all="raise")
    np.seterr(**old)
    yield
    mpmath.mp.prec = prec
    np.seterr(**old)
