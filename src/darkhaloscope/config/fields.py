"""Field declarations shared by every config section: documentation, unit and range."""

from __future__ import annotations

from dataclasses import field
from typing import Any

SPLITS = ("train", "val", "test")
ROLES = ("control", "injection")


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
