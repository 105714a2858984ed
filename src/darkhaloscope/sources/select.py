"""Split groups of the bank, and source choice per task: which template, its rotation and flip.

A source's ``split_group`` is a salted blake2b hash of its ``ident`` (the same fractions as the
task splits), so it never changes when the bank is rebuilt or subsampled. Source choice is
deterministic from the task's random generator (seeded by blake2b of (seed, task_id, stream) in
:func:`darkhaloscope.ids.task_rng`) and always within the task's split group, so a source used
for ``test`` injections never appears in ``train`` (DESIGN 3.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import BankError
from ..ids import hash_unit, split_of_unit
from .bank import SourceBank


def assign_split_group(ident: str, fractions: Mapping[str, float], salt: str) -> str:
    """Split group (train/val/test) of a source from the salted blake2b hash of its ``ident``."""
    return split_of_unit(hash_unit(str(ident).strip(), salt), fractions)


def assign_split_groups(idents: Iterable[str], fractions: Mapping[str, float], salt: str) -> np.ndarray:
    """:func:`assign_split_group` over many idents (array of str)."""
    return np.array([assign_split_group(i, fractions, salt) for i in idents], dtype=str)


_BY_Z: dict[tuple[int, str], tuple[object, np.ndarray, np.ndarray]] = {}


def _split_by_redshift(bank: SourceBank, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(bank indices of ``split`` sorted by z_phot, their z_phot), memoised per bank object."""
    key = (id(bank), split)
    hit = _BY_Z.get(key)
    if hit is None or hit[0] is not bank:
        if len(_BY_Z) > 64:
            _BY_Z.clear()
        idx = bank.indices(split)
        z = np.asarray(bank.meta["z_phot"], np.float64)[idx]
        z = np.where(np.isfinite(z), z, -np.inf)  # a source without a redshift is never behind a lens
        order = np.argsort(z, kind="stable")
        hit = _BY_Z[key] = (bank, idx[order], z[order])
    return hit[1], hit[2]


def choose_source_behind(rng: np.random.Generator, bank: SourceBank, split: str, z_min: float) -> int | None:
    """Bank index of a source of ``split``'s group with catalogue ``z_phot >= z_min``, uniform
    among them (one draw from ``rng``, always); None when the group has none that far."""
    idx, z = _split_by_redshift(bank, split)
    if len(idx) == 0:
        raise BankError(f"source bank {bank.path} has no sources in split group '{split}'", path=bank.path, field="split_group")
    u = float(rng.random())
    first = int(np.searchsorted(z, z_min, side="left"))
    n = len(idx) - first
    return None if n <= 0 else int(idx[first + min(int(u * n), n - 1)])


def draw_orientation(rng: np.random.Generator) -> tuple[float, bool]:
    """(rotation angle in degrees, uniform in [0, 360); flip about the template's x axis, p = 0.5)."""
    return float(rng.uniform(0.0, 360.0)), bool(rng.random() < 0.5)
