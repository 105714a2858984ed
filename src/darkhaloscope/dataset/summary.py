"""A short summary of a stamp dataset: rows per split and role, arc_snr quartiles.

Reads only small columns (never the pixel blobs), so it is cheap on a survey-scale dataset.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from ..config import ROLES, SPLITS
from .reader import read_split
from .storage import StorageOptions

_COLUMNS = ["role", "cutout_ok", "arc_snr"]


def summarize(root: str, options: StorageOptions | None = None) -> dict:
    """``{split: {rows, controls, injections, roles: {role: rows}, not_ok, arc_snr_q25/q50/q75
    (injections, null-free)}}``."""
    out = {}
    for split in SPLITS:
        t = read_split(root, split, columns=_COLUMNS, options=options)
        role = t["role"]
        snr = t.filter(pc.and_(pc.equal(role, "injection"), pc.is_valid(t["arc_snr"])))["arc_snr"].to_numpy(zero_copy_only=False)
        q = np.percentile(snr, [25, 50, 75]) if len(snr) else [float("nan")] * 3
        out[split] = {
            "rows": t.num_rows,
            "controls": int(pc.sum(pc.equal(role, "control")).as_py() or 0),
            "injections": int(pc.sum(pc.equal(role, "injection")).as_py() or 0),
            "roles": {r: n for r in ROLES if (n := int(pc.sum(pc.equal(role, r)).as_py() or 0))},
            "not_ok": int(pc.sum(pc.invert(t["cutout_ok"])).as_py() or 0),
            "arc_snr_q25": float(q[0]), "arc_snr_q50": float(q[1]), "arc_snr_q75": float(q[2]),
        }
    return out


def format_summary(summary: dict) -> str:
    """The summary as a small fixed-width table."""
    lines = [f"{'split':6s} {'rows':>7s} {'controls':>9s} {'injections':>11s} {'not_ok':>7s}   arc_snr q25 / q50 / q75 (injections)   other roles"]
    for split, s in summary.items():
        other = ", ".join(f"{r} {n}" for r, n in s.get("roles", {}).items() if r not in ("control", "injection"))
        lines.append(
            f"{split:6s} {s['rows']:7d} {s['controls']:9d} {s['injections']:11d} {s['not_ok']:7d}   "
            f"{s['arc_snr_q25']:.2f} / {s['arc_snr_q50']:.2f} / {s['arc_snr_q75']:.2f}          {other}"
        )
    return "\n".join(lines)
