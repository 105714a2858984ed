"""Source choice per task: which bank template, its rotation and flip.

Deterministic from the task's random generator, and always within the task's split group, so a
source used for ``test`` injections never appears in ``train`` (DESIGN 3.2).
"""

from __future__ import annotations

import numpy as np

from ..errors import BankError
from .bank import SourceBank


def choose_source(rng: np.random.Generator, bank: SourceBank, split: str) -> int:
    """Bank index of a source from ``split``'s group, drawn uniformly with ``rng``."""
    candidates = bank.indices(split)
    if len(candidates) == 0:
        raise BankError(f"source bank {bank.path} has no sources in split group '{split}'", path=bank.path, field="split_group")
    return int(candidates[rng.integers(len(candidates))])


def draw_orientation(rng: np.random.Generator) -> tuple[float, bool]:
    """(rotation angle in degrees, uniform in [0, 360); flip about the template's x axis, p = 0.5)."""
    return float(rng.uniform(0.0, 360.0)), bool(rng.random() < 0.5)
