"""Field declarations shared by every config section: documentation, unit and range."""

from __future__ import annotations

from dataclasses import field
from typing import Any

SPLITS = ("train", "val", "test")
# Every role a stamp row can have, and its training label: the ONE place the mapping lives
# (ids.label_of / labels_of read it). Canameras et al. 2020 (A&A 644, A163, sec. 3.2): the design
# of the negatives decides a finder's purity; Metcalf et al. 2019 (A&A 625, A119, sec. 6):
# ring-like galaxies are its hardest false positives.
ROLE_LABELS = {
    "control": 0,     # the host as it is
    "injection": 1,   # a lensed source painted on the host
    "unlensed": 0,    # the same kind of source, not lensed, beside the host (a blue companion is not a lens)
    "ring": 0,        # a procedural non-lensing ring, partial ring, spiral arms or tidal shells
    "impostor": 0,    # a real look-alike (ring galaxy, spiral, merger) from a staged catalogue
    "known_lens": 1,  # a real known lens from a staged catalogue
}
ROLES = tuple(ROLE_LABELS)
# Roles the task table's salted hash hands out to LRG tasks; impostor and known_lens rows come
# from host tables staged from catalogues, never from the hash.
HASHED_ROLES = ("control", "injection", "unlensed", "ring")
# Roles whose stamp is the host with something painted on it (an arc_npz, SNRs, brightness).
PAINTED_ROLES = ("injection", "unlensed", "ring")


def param(
    default: Any,
    doc: str,
    unit: str = "",
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """Declare a config field with its documentation, unit and allowed range."""
    meta = {"doc": doc, "unit": unit, "ge": ge, "le": le, "gt": gt, "lt": lt, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """Declare a nested section field defaulting to its dataclass defaults."""
    return field(default_factory=cls, metadata={"doc": cls.__doc__ or "", "unit": ""})
