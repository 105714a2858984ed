"""Which rows the trainer keeps (torch-free, so the report can use it): ``row_mask`` (cutout_ok,
roles, the injection filters of ``train``) and the selection of unaccepted injections with the
same share of matched controls.

Injections that never met the generation-time criteria (``accepted = false``) are dropped. Were
that all, the kept injections would sit on better-seeing, deeper hosts than the controls and the
metadata (``psf_fwhm_r``, ``psfdepth_r``) would become a label. So the hosts are binned on
quantiles of both columns (``train.selection_bins`` per axis, edges from every usable row of the
split), each bin's dropped share f of its injections is computed, and a control of that bin is
dropped when a salted hash of its ``task_id`` falls below f: the same share, decided per row, so
any row group reads the same decision and the selection is deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from ..config import PAINTED_ROLES, ROLES, TrainConfig

SELECTION_COLUMNS = ("accepted", "psf_fwhm_r", "psfdepth_r")
_SALT = 0x5E1EC7
FILTER_COLUMNS = ("task_id", "role", "cutout_ok", "arc_snr", "theta_e", "psf_fwhm_r", "psfdepth_r", "accepted")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def task_hash(task_id: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``task_id`` salted by ``seed``: uint64, uniform, stable across machines."""
    with np.errstate(over="ignore"):
        z = np.asarray(task_id, dtype=np.int64).view(np.uint64) + np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def _col(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 with nulls as NaN."""
    return table[name].to_numpy(zero_copy_only=False).astype(np.float64)


def row_mask(table: pa.Table, tcfg: TrainConfig, selection: MatchedSelection | None = None) -> np.ndarray:
    """Rows kept for training / evaluation: cutout_ok, a known role, the injection filters, and
    (``train.accepted_only``) the matched selection of ml/selection.py."""
    ok = table["cutout_ok"].to_numpy(zero_copy_only=False).astype(bool)
    role = table["role"].to_numpy(zero_copy_only=False)
    inj = role == "injection"
    keep = ok & np.isin(role, ROLES)
    if tcfg.arc_snr_min > 0 or tcfg.arc_snr_max > 0:
        snr = _col(table, "arc_snr")
        good = np.ones(len(snr), bool)
        if tcfg.arc_snr_min > 0:
            good &= snr >= tcfg.arc_snr_min
        if tcfg.arc_snr_max > 0:
            good &= snr <= tcfg.arc_snr_max
        keep &= ~inj | good  # NaN SNR (no good pixels) fails the filter
    if tcfg.theta_e_over_psf_min > 0:
        ratio = _col(table, "theta_e") / _col(table, "psf_fwhm_r")
        keep &= ~inj | (ratio >= tcfg.theta_e_over_psf_min)
    if tcfg.accepted_only:
        keep &= apply_selection(table, selection)
    return keep


def split_selection(table: pa.Table, tcfg: TrainConfig) -> MatchedSelection | None:
    """The matched selection of a split from its light columns (None when ``accepted_only`` is off)."""
    if not tcfg.accepted_only:
        return None
    import dataclasses

    usable = row_mask(table, dataclasses.replace(tcfg, accepted_only=False))
    return matched_selection(table, usable, tcfg.selection_bins)




@dataclass(frozen=True)
class MatchedSelection:
    """Bin edges (inner quantiles) on psf_fwhm_r (arcsec) and psfdepth_r (1/nanomaggy^2), and the
    share of controls to drop per bin [n_psf, n_depth]."""

    psf_edges: tuple
    depth_edges: tuple
    drop_share: tuple  # row-major [n_psf][n_depth]

    def to_dict(self) -> dict:
        return asdict(self)


def _unit_hash(task_id: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per task_id (splitmix64 with a fixed salt)."""
    return (task_hash(task_id, _SALT) >> np.uint64(11)).astype(np.float64) / float(2**53)


def _bins(sel: MatchedSelection, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    psf = np.nan_to_num(_col(table, "psf_fwhm_r"), nan=0.0)
    depth = np.nan_to_num(_col(table, "psfdepth_r"), nan=0.0)
    return np.searchsorted(np.asarray(sel.psf_edges), psf, side="right"), np.searchsorted(np.asarray(sel.depth_edges), depth, side="right")


def accepted_mask(table: pa.Table) -> np.ndarray:
    """True for rows that are not unaccepted painted rows (injections, and unlensed/ring negatives,
    which inherit their reference injection's acceptance); controls, accepted and pre-acceptance rows."""
    if "accepted" not in table.column_names:
        return np.ones(table.num_rows, bool)
    acc = table["accepted"].to_numpy(zero_copy_only=False)
    painted = np.isin(table["role"].to_numpy(zero_copy_only=False), PAINTED_ROLES)
    return ~(painted & (acc == False))  # noqa: E712 (null = a row made before acceptance existed: kept)


def matched_selection(table: pa.Table, usable: np.ndarray, n_bins: int) -> MatchedSelection:
    """The per-bin shares from a split's light columns; ``usable``: rows passing the other filters."""
    psf, depth = _col(table, "psf_fwhm_r")[usable], _col(table, "psfdepth_r")[usable]
    q = np.linspace(0, 1, n_bins + 1)[1:-1]
    psf_edges = tuple(float(v) for v in np.nanquantile(psf, q)) if len(psf) else ()
    depth_edges = tuple(float(v) for v in np.nanquantile(depth, q)) if len(depth) else ()
    sel = MatchedSelection(psf_edges, depth_edges, ())
    ib, jb = _bins(sel, table)
    inj = table["role"].to_numpy(zero_copy_only=False) == "injection"
    dropped = inj & ~accepted_mask(table)
    share = np.zeros((n_bins, n_bins))
    for i in range(n_bins):
        for j in range(n_bins):
            here = usable & inj & (ib == i) & (jb == j)
            share[i, j] = float(dropped[here].sum()) / here.sum() if here.any() else 0.0
    return MatchedSelection(psf_edges, depth_edges, tuple(tuple(float(v) for v in r) for r in share))


def apply_selection(table: pa.Table, sel: MatchedSelection | None) -> np.ndarray:
    """Keep mask: unaccepted painted rows out (injections, and the negatives whose reference arc
    was unaccepted), and controls dropped with their bin's share; real-stamp roles (impostor,
    known_lens) come from other catalogues and are left as they are."""
    keep = accepted_mask(table)
    if sel is None or not sel.drop_share:
        return keep
    share = np.asarray(sel.drop_share)
    ib, jb = _bins(sel, table)
    ctl = table["role"].to_numpy(zero_copy_only=False) == "control"
    drop_ctl = ctl & (_unit_hash(table["task_id"].to_numpy()) < share[ib, jb])
    return keep & ~drop_ctl
