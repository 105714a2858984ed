"""Per-role report: counts per split, brightness distributions per painted role, and the
shortcut gates run for every negative role against the injections (DESIGN 5).

A negative role that a classifier tells from the injections by nuisance features alone (outer
annulus, noise, PSF, depth, host flux, encoding), or whose host centres differ in brightness
once the painted light is subtracted, teaches the finder a shortcut instead of morphology: such
a role fails the report like a leaky control set would (Canameras et al. 2020, A&A 644, A163,
sec. 3.2: negatives must differ from the positives only in what makes a lens).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from ..config import HASHED_ROLES, PAINTED_ROLES, ROLES, Config
from . import gates as G
from .accumulate import RowSample, hash_unit_array

NEGATIVE_ROLES = tuple(r for r in ROLES if r not in ("control", "injection", "known_lens"))
BRIGHTNESS_COLUMNS = ("arc_flux_r", "arc_snr", "arc_snr_sum", "lensed_hlr_arcsec")
ROLE_READ_COLUMNS = ("task_id", "role", "cutout_ok", *BRIGHTNESS_COLUMNS)
QUANTILES = (5, 25, 50, 75, 95)
SAMPLE_SALT = "dhs-report-roles-v1"


class RoleTally:
    """Counts per (split, role) and a hash sample of each painted role's brightness, streamed."""

    def __init__(self, sample_fraction: float = 1.0) -> None:
        self.counts: dict[str, Counter] = {}
        self.counts_ok: dict[str, Counter] = {}
        self.fraction = sample_fraction
        self.sample = RowSample()

    def update(self, split: str, batch: pa.RecordBatch) -> None:
        roles = np.asarray(batch.column("role").to_pylist(), dtype=object)
        ok = np.asarray(batch.column("cutout_ok").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        self.counts.setdefault(split, Counter()).update(roles.tolist())
        self.counts_ok.setdefault(split, Counter()).update(roles[ok].tolist())
        keep = ok & np.isin(roles, PAINTED_ROLES) & (hash_unit_array(batch.column("task_id").to_numpy(zero_copy_only=False), SAMPLE_SALT) < self.fraction)
        cols = {c: batch.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)[keep] for c in BRIGHTNESS_COLUMNS}
        cols["role"] = roles[keep]
        self.sample.add(cols)

    def _n(self) -> int:
        return len(self.sample.get("role"))

    def brightness(self) -> dict:
        """Per painted role and column: n and quantiles (p5 ... p95) of the sampled rows."""
        if not self._n():
            return {}
        roles = self.sample.get("role").astype(str)
        out: dict = {}
        for role in PAINTED_ROLES:
            sel = roles == role
            if not sel.any():
                continue
            out[role] = {}
            for c in BRIGHTNESS_COLUMNS:
                v = self.sample.get(c)[sel]
                v = v[np.isfinite(v)]
                out[role][c] = {"n": int(v.size), **({f"p{q}": float(np.percentile(v, q)) for q in QUANTILES} if v.size else {})}
        return out

    def sampled(self, column: str) -> dict[str, np.ndarray]:
        """Sampled values of ``column`` per painted role (for the figure)."""
        roles = self.sample.get("role").astype(str) if self._n() else np.empty(0, str)
        return {r: self.sample.get(column)[roles == r] for r in PAINTED_ROLES if (roles == r).any()}

    def table(self, cfg: Config) -> dict:
        """Counts per split and role, the roles the config mixes in that a split lacks, brightness."""
        missing = {}
        for split, c in self.counts_ok.items():
            want = [r for r, f in cfg.tasks.role_mix(split).items() if f > 0 and r in HASHED_ROLES]
            lack = [r for r in want if not c.get(r)]
            if lack:
                missing[split] = lack
        return {"counts": {s: dict(sorted(c.items())) for s, c in self.counts.items()},
                "counts_cutout_ok": {s: dict(sorted(c.items())) for s, c in self.counts_ok.items()},
                "configured_roles_missing": missing, "brightness": self.brightness()}


def _pick(ps, keep: tuple[str, ...], kept_ids: set | None = None) -> np.ndarray:
    """Sample indices of rows with a role in ``keep`` and, when given, a task_id in ``kept_ids``
    (the trainer's selection, ml/selection.py: the gates judge what the model will see)."""
    mask = np.isin(np.asarray(ps.roles, dtype=object), keep)
    if kept_ids is not None:
        mask &= np.fromiter((t in kept_ids for t in ps.task_ids), bool, len(ps.task_ids))
    return np.flatnonzero(mask)


def role_gates(ps, cfg: Config, bands: str, kept_ids: set | None = None) -> tuple[list, dict]:
    """For every negative role in the pixel sample: the nuisance classifier and the central
    brightness gate, that role (label 0) against the injections (label 1). Returns the gates and
    their figure data by gate name; figures are ``gate_shortcut_<kind>_<role>.png``."""
    gates, fig_data = [], {}
    present = set(ps.roles)
    for role in NEGATIVE_ROLES:
        if role not in present:
            continue
        idx = _pick(ps, (role, "injection"), kept_ids)
        rows = [ps.feature_rows[i] for i in idx]
        labels = [ps.labels[i] for i in idx]
        f_clf, f_cen = f"gate_shortcut_classifier_{role}.png", f"gate_shortcut_central_brightness_{role}.png"
        g, fig = G.gate_shortcut_classifier(rows, labels, cfg, f_clf, name=f"shortcuts.nuisance_classifier.{role}", negative=f"{role} rows")
        gates.append(g)
        fig_data[g.name] = ("clf", f_clf, fig)
        g, fig = G.gate_central_brightness([ps.central[i] for i in idx], labels, [ps.central_arc_subtracted[i] for i in idx], cfg, f_cen, bands,
                                           name=f"shortcuts.central_brightness.{role}", negative=f"{role} rows")
        gates.append(g)
        fig_data[g.name] = ("central", f_cen, fig)
    return gates, fig_data


def classic_subset(ps, kept_ids: set | None = None) -> tuple[list, list, list, list]:
    """(feature rows, labels, central, arc-subtracted) of the control and injection rows only
    (those the trainer keeps, when ``kept_ids`` is given)."""
    idx = _pick(ps, ("control", "injection"), kept_ids)
    return ([ps.feature_rows[i] for i in idx], [ps.labels[i] for i in idx], [ps.central[i] for i in idx],
            [ps.central_arc_subtracted[i] for i in idx])
