"""The report's view of generation-time acceptance (issue 15) and of the trainer's selection.

- ``acceptance_summary``: acceptance rate and mean ``n_tries`` overall and in tertiles of
  theta_E, PSF FWHM (r) and depth (r); the Spearman correlation of theta_E with the host's r
  flux (theta_E follows the host); the reasons the unaccepted failed.
- ``gate_criteria``: every ``accepted = true`` row meets every enabled criterion of config
  section ``accept`` with its stored values (and src_z >= lens_z + lens.min_dz).
- ``trainer_keep_ids``: the task_ids the trainer keeps (ml/selection.py ``row_mask`` with the split's
  matched selection), so the nuisance gate and the gallery are measured after that selection.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa

from ..config import Config
from .gates import FAIL, PASS, SKIPPED, Gate
from .source import DatasetSource, iter_meta_batches

COLUMNS = (
    "task_id", "role", "cutout_ok", "accepted", "n_tries", "accept_reason", "theta_e", "psf_fwhm_r", "psfdepth_r", "flux_r",
    "lens_z", "src_z", "accept_magnification", "arc_snr_region_g", "arc_snr_region_r", "accept_resolvability", "accept_contrast",
    "arc_snr", "cosmos_index",
)


def _read(src: DatasetSource, split: str, columns) -> pa.Table:
    names = set(src.dataset(split).schema.names)
    cols = [c for c in columns if c in names]
    return pa.Table.from_batches(list(iter_meta_batches(src, split, cols)))


def _f(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].to_numpy(zero_copy_only=False).astype(np.float64)


def _mean(x: np.ndarray) -> float | None:
    """Mean of the finite values (None when there is none)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _tertiles(x: np.ndarray, acc: np.ndarray, tries: np.ndarray) -> list:
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return []
    q = np.quantile(x[ok], [0, 1 / 3, 2 / 3, 1])
    b = np.clip(np.searchsorted(q, x, side="right") - 1, 0, 2)
    out = []
    for i in range(3):
        m = ok & (b == i)
        out.append({"range": [float(q[i]), float(q[i + 1])], "n": int(m.sum()),
                    "acceptance_rate": float(acc[m].mean()) if m.any() else None,
                    "mean_n_tries": _mean(tries[m])})
    return out


def acceptance_summary(src: DatasetSource) -> dict:
    """Acceptance statistics of the injections with a cutout (all splits together)."""
    tables = [_read(src, s, COLUMNS) for s in src.splits]
    t = pa.concat_tables(tables, promote_options="default") if tables else None
    if t is None or "accepted" not in t.column_names:
        return {"available": False}
    inj = (t["role"].to_numpy(zero_copy_only=False) == "injection") & t["cutout_ok"].to_numpy(zero_copy_only=False).astype(bool)
    t = t.filter(pa.array(inj))
    acc = t["accepted"].to_numpy(zero_copy_only=False) == True  # noqa: E712 (null = not accepted)
    tries = _f(t, "n_tries")
    theta, flux = _f(t, "theta_e"), _f(t, "flux_r")
    both = np.isfinite(theta) & np.isfinite(flux)
    rho = None
    if both.sum() > 2:
        from scipy.stats import spearmanr

        rho = float(spearmanr(theta[both], flux[both]).statistic)
    reasons = Counter(re.match(r"[^\d]*", str(r)).group(0).strip() for r, a in zip(t["accept_reason"].to_pylist(), acc, strict=True) if not a)
    return {
        "available": True, "injections": int(t.num_rows), "accepted": int(acc.sum()),
        "acceptance_rate": float(acc.mean()) if len(acc) else None,
        "mean_n_tries": _mean(tries),
        "by_theta_e": _tertiles(theta, acc, tries), "by_psf_fwhm_r": _tertiles(_f(t, "psf_fwhm_r"), acc, tries),
        "by_psfdepth_r": _tertiles(_f(t, "psfdepth_r"), acc, tries),
        "spearman_theta_e_vs_host_flux_r": rho,
        "failure_reasons": dict(reasons.most_common(6)),
    }


FIGURE = "acceptance.png"


def gate_criteria(src: DatasetSource, cfg: Config) -> Gate:
    """Every accepted injection meets every enabled criterion with its stored values."""
    name, ac = "acceptance.criteria", cfg.accept
    n_acc, bad = 0, []
    for split in src.splits:
        t = _read(src, split, COLUMNS)
        if "accepted" not in t.column_names:
            return Gate(name, SKIPPED, "skipped: the dataset has no 'accepted' column (made before acceptance)", 0, None, FIGURE)
        inj = t["role"].to_numpy(zero_copy_only=False) == "injection"  # negatives only inherit the flag
        acc = inj & (t["accepted"].to_numpy(zero_copy_only=False) == True)  # noqa: E712
        n_acc += int(acc.sum())
        checks = [("accept_resolvability", ac.min_resolvability), ("accept_magnification", ac.min_magnification), ("accept_contrast", ac.min_contrast)]
        fails = np.zeros(t.num_rows, bool)
        for col, lo in checks:
            if lo > 0:
                v = _f(t, col)
                fails |= ~(v >= np.float32(lo) * (1 - 1e-6))
        if ac.min_snr_region > 0:
            snr = np.fmax(_f(t, "arc_snr_region_g"), _f(t, "arc_snr_region_r"))
            fails |= ~(snr >= np.float32(ac.min_snr_region) * (1 - 1e-6))
        fails |= ~(_f(t, "src_z") >= _f(t, "lens_z") + cfg.lens.min_dz - 1e-6)
        ids = t["task_id"].to_numpy()[acc & fails]
        bad += [f"split={split} task_id={int(i)}" for i in ids[:5]]
    if n_acc == 0:
        return Gate(name, SKIPPED, "skipped: no accepted injection (a dataset made before acceptance has none)", 0, None, FIGURE)
    if bad:
        return Gate(name, FAIL, f"accepted injections that miss a criterion: {', '.join(bad)}", 0, len(bad), FIGURE)
    return Gate(name, PASS, f"all {n_acc} accepted injections meet every enabled criterion of 'accept' and src_z >= lens_z + {cfg.lens.min_dz}", 0, 0, FIGURE)


def trainer_keep_ids(src: DatasetSource, cfg: Config) -> set:
    """task_ids the trainer keeps in each split (ml/selection.py row_mask with the split's selection)."""
    from ..ml.selection import FILTER_COLUMNS, row_mask, split_selection

    keep: set = set()
    for split in src.splits:
        t = _read(src, split, FILTER_COLUMNS)
        if "accepted" not in t.column_names:
            t = t.append_column("accepted", pa.nulls(t.num_rows, pa.bool_()))
        mask = row_mask(t, cfg.train, split_selection(t, cfg.train))
        keep.update(int(i) for i in t["task_id"].to_numpy()[mask])
    return keep
