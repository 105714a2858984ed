"""The seeds' section-4 tables, per split, from one streaming pass over the metadata columns.

Populations (documented in docs/REPORT.md): row counts over all rows; arc, lens and source
statistics over injections with ``cutout_ok``; PSF size over every row with ``cutout_ok``.
Statistics ignore nulls (counted apart); standard deviations are population (ddof = 0);
percentiles are numpy's linear interpolation. Arc colours are ``-2.5 log10(f_g / f_r)`` and
``-2.5 log10(f_r / f_z)`` of ``arc_flux_*`` where both fluxes are positive.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .accumulate import ColumnStats, Moments, RowSample, hash64_strings, hash_unit_array

SNR_THRESHOLDS = (1.0, 10.0, 50.0)
# column -> thresholds; every one is measured on injections with cutout_ok except psf_fwhm_r
STAT_COLUMNS: dict[str, tuple[float, ...]] = {
    "arc_snr": SNR_THRESHOLDS,
    "arc_snr_sum": SNR_THRESHOLDS,
    "arc_snr_region": SNR_THRESHOLDS,
    "theta_e": (),
    "lensed_hlr_arcsec": (),
    "magnification": (),
    "arc_colour_g_r": (),
    "arc_colour_r_z": (),
    "psf_fwhm_r": (),
}
ALL_ROW_STATS = ("psf_fwhm_r",)
BALANCE_COLUMNS = ("psf_fwhm_r", "psfdepth_r", "flux_r")
META_READ_COLUMNS = (
    "task_id", "galaxy_id", "split", "role", "cutout_ok", "cosmos_index",
    "arc_snr", "arc_snr_sum", "arc_snr_region", "theta_e", "lensed_hlr_arcsec", "magnification",
    "arc_flux_g", "arc_flux_r", "arc_flux_z", "psf_fwhm_r", "psfdepth_r", "flux_r",
)
SAMPLE_SALT = "dhs-report-sample-v1"


def _f64(batch: pa.RecordBatch, name: str) -> np.ndarray:
    col = batch.column(name)
    return col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64) if col.null_count < len(col) else np.full(len(col), np.nan)


def _colour(f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    ok = (f1 > 0) & (f2 > 0)
    out = np.full(f1.shape, np.nan)
    out[ok] = -2.5 * np.log10(f1[ok] / f2[ok])
    return out


class SplitTally:
    """Everything the tables need about one split, updated batch by batch."""

    def __init__(self, split: str, n_expected: int, sample_max: int) -> None:
        self.split = split
        self.fraction = 1.0 if n_expected <= sample_max else sample_max / n_expected
        self.n_rows = self.n_ok = self.n_control = self.n_injection = self.n_inj_ok = 0
        self.n_split_mismatch = 0
        self.n_snr_below_1 = 0  # injections (ok) with arc_snr < 1 or null
        self.n_theta_psf = self.n_theta_below_psf = 0
        self.stats = {name: ColumnStats(thr) for name, thr in STAT_COLUMNS.items()}
        self.balance = {(role, c): Moments() for role in ("control", "injection") for c in BALANCE_COLUMNS}
        self.cosmos: set[int] = set()
        self._gal_hashes: list[np.ndarray] = []
        self.sample = RowSample()

    def update(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if n == 0:
            return
        role = np.asarray(batch.column("role").to_pylist(), dtype=object)
        ok = np.asarray(batch.column("cutout_ok").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        split_col = np.asarray(batch.column("split").to_pylist(), dtype=object)
        inj = role == "injection"
        inj_ok = inj & ok
        self.n_rows += n
        self.n_ok += int(ok.sum())
        self.n_control += int((role == "control").sum())
        self.n_injection += int(inj.sum())
        self.n_inj_ok += int(inj_ok.sum())
        self.n_split_mismatch += int((split_col != self.split).sum())

        cols = {c: _f64(batch, c) for c in ("arc_snr", "arc_snr_sum", "arc_snr_region", "theta_e", "lensed_hlr_arcsec", "magnification", "psf_fwhm_r", "psfdepth_r", "flux_r")}
        fg, fr, fz = (_f64(batch, f"arc_flux_{b}") for b in "grz")
        cols["arc_colour_g_r"] = _colour(fg, fr)
        cols["arc_colour_r_z"] = _colour(fr, fz)
        for name, st in self.stats.items():
            st.update(cols[name][ok] if name in ALL_ROW_STATS else cols[name][inj_ok])
        snr = cols["arc_snr"][inj_ok]
        self.n_snr_below_1 += int(np.count_nonzero(~(snr >= 1.0)))  # NaN (null) counts as below
        th, psf = cols["theta_e"][inj_ok], cols["psf_fwhm_r"][inj_ok]
        both = np.isfinite(th) & np.isfinite(psf)
        self.n_theta_psf += int(both.sum())
        self.n_theta_below_psf += int(np.count_nonzero(th[both] < psf[both]))
        for r in ("control", "injection"):
            sel = ok & (role == r)
            for c in BALANCE_COLUMNS:
                self.balance[(r, c)].update(cols[c][sel])

        cosmos = batch.column("cosmos_index")
        if cosmos.null_count < n:
            self.cosmos.update(int(v) for v in np.unique(cosmos.drop_null().to_numpy()))
        self._gal_hashes.append(hash64_strings(batch.column("galaxy_id").to_pylist()))

        task_id = batch.column("task_id").to_numpy(zero_copy_only=False)
        keep = hash_unit_array(task_id, SAMPLE_SALT) < self.fraction
        sample = {name: cols[name][keep] for name in STAT_COLUMNS}
        sample["is_injection"] = inj[keep]
        sample["ok"] = ok[keep]
        self.sample.add(sample)

    def galaxy_hashes(self) -> np.ndarray:
        return np.concatenate(self._gal_hashes) if self._gal_hashes else np.empty(0, np.uint64)

    def sampled(self, name: str, population: str = "auto") -> np.ndarray:
        """Sampled values of ``name`` in the population its table uses (injections with cutout_ok,
        or every ok row for PSF size)."""
        ok = self.sample.get("ok").astype(bool)
        every_row = name in ALL_ROW_STATS if population == "auto" else population == "all"
        if every_row:
            return self.sample.get(name)[ok]
        return self.sample.get(name)[ok & self.sample.get("is_injection").astype(bool)]

    def table(self) -> dict:
        """The split's section-4 entries (JSON-able)."""
        def pct(a: int, b: int) -> float | None:
            return 100.0 * a / b if b else None

        exact = self.fraction >= 1.0
        out = {
            "rows": self.n_rows,
            "cutout_ok_pct": pct(self.n_ok, self.n_rows),
            "control_pct": pct(self.n_control, self.n_rows),
            "injection_pct": pct(self.n_injection, self.n_rows),
            "injections_ok": self.n_inj_ok,
            "unique_cosmos_indices": len(self.cosmos),
            "split_column_mismatches": self.n_split_mismatch,
            "arc_snr_below_1_pct": pct(self.n_snr_below_1, self.n_inj_ok),
            "theta_e_below_psf_fwhm_r_pct": pct(self.n_theta_below_psf, self.n_theta_psf),
            "quantile_sample_fraction": self.fraction,
            "stats": {name: st.summary(self.sampled(name), exact) for name, st in self.stats.items()},
            "balance": {
                f"{c}_mean_{r}": (m.mean if m.n else None)
                for (r, c), m in self.balance.items()
            },
        }
        return out
