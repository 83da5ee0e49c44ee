"""Mean and standard error of empirical kernels over independent initialisations."""
from __future__ import annotations

import numpy as np


def seed_average(one_draw, arch, X, kind: str, width: int, n_seeds: int, seed: int, part: str | None = None):
    """``(mean, se, samples)`` of ``one_draw(arch, X, width, rng)[kind]`` (or its NTK ``part``) over
    ``n_seeds`` generators ``default_rng([seed, i])``; se = sample std (ddof 1) / sqrt(n_seeds)."""
    if n_seeds < 2:
        raise ValueError("n_seeds must be >= 2 to estimate a standard error")
    samples = []
    for i in range(n_seeds):
        ek = one_draw(arch, X, width, np.random.default_rng([seed, i]))
        samples.append(ek["parts"][part] if part else ek[kind])
    S = np.stack(samples)
    return S.mean(0), S.std(0, ddof=1) / np.sqrt(n_seeds), S
