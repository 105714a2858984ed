"""Stamps and evaluation-time metadata for anchors: the same pixels and columns as training rows.

Pixels: with a DR10 brick root at hand, :func:`darkhaloscope.survey.cutout.cutout` (exactly the
code that makes training stamps: native brick pixels, the same box convention); otherwise, or
when that fails (no brick), the Legacy Surveys cutout service (resampled, see
:mod:`darkhaloscope.survey.cutout_service`). ``cutout_source`` records which one made a stamp.

Metadata (never zeros, the seeds' mistake): PSF FWHM, PSF depth and host flux per band from
(1) the nearest Tractor row within 1.5" (brick ``tractor/`` file, or the service's catalog
cutout), else (2) the brick's ``psfsize_<b>`` in survey-bricks, and PSF depth from the stamp's
own invvar: for a Gaussian PSF of width sigma (pixels) the PSF-flux inverse variance is
``median(invvar) * 4 pi sigma^2`` (1/nanomaggy^2). What is still unknown stays NaN and
``metadata_source`` says where each value came from; :func:`fill_metadata` imputes NaNs from
the other anchors' median and counts them, for scorers that cannot take NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..dataset.stamp import encode_stamp
from ..errors import CutoutError, DataFileError
from ..survey.cutout import Cutout
from ..survey.cutout_service import CutoutService, nearest_metadata

log = logging.getLogger(__name__)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
META_KEYS = ("psf_fwhm", "psfdepth", "flux")
ANCHOR_KEEP = ("anchor_id", "name", "ra", "dec", "anchor_set", "set_ground", "set_slacs_bells", "set_ground_other",
               "set_other", "grade", "references", "catalogs", "lens_type", "z_lens", "theta_e", "in_dr10")


def psfdepth_from_invvar(invvar: np.ndarray, fwhm: float, pixscale: float = 0.262) -> float:
    """PSF-flux inverse variance (1/nanomaggy^2) of a Gaussian PSF of ``fwhm`` arcsec on pixels
    of ``invvar`` [S, S] (1/nanomaggy^2); NaN without good pixels or a FWHM."""
    good = invvar[invvar > 0]
    if good.size == 0 or not np.isfinite(fwhm) or fwhm <= 0:
        return np.nan
    s = fwhm * FWHM_TO_SIGMA / pixscale
    # PSF photometry: var(flux) = 1 / sum(iv * P^2); for a unit Gaussian sum(P^2) = 1 / (4 pi s^2).
    return float(np.median(good) / (4.0 * np.pi * s * s))


def brick_metadata(root: str, brickname: str | None, ra: float, dec: float, bands: str = "grz",
                   match_radius: float = 1.5, options=None) -> tuple[dict, str]:
    """(metadata, source) for a position from the brick's Tractor file, else the survey-bricks
    ``psfsize_<b>`` of the brick. Units as in :func:`CutoutService.catalog_metadata`."""
    from astropy.io import fits

    from ..survey import remote
    from ..survey.brick_reader import BrickReader
    from ..survey.bricks import tractor_relpath

    if not brickname:
        return {}, "none"
    try:
        with remote.open_file(root, tractor_relpath(brickname), options) as f, fits.open(f, memmap=False) as hdul:
            t = hdul[1].data
            rows = {n.lower(): np.asarray(t[n]) for n in t.columns.names}
        meta = nearest_metadata(rows, ra, dec, match_radius, bands)
        if meta:
            return meta, "tractor"
    except (remote.FileMissing, OSError, ValueError, IndexError, TypeError) as exc:
        log.debug("no tractor metadata for %s: %s", brickname, exc)
    table = BrickReader(root, options=options).table()
    if table is not None:
        i = table.index(brickname)
        if i is not None:
            meta = {}
            for b in bands:
                v = table.extra.get(f"psfsize_{b}")
                meta[f"psf_fwhm_{b}"] = float(v[i]) if v is not None and np.isfinite(v[i]) and v[i] > 0 else np.nan
            if any(np.isfinite(v) for v in meta.values()):
                return meta, "survey-bricks"
    return {}, "none"


def _complete(meta: dict, cut: Cutout, bands: str, pixscale: float) -> dict:
    out = {f"{k}_{b}": float(meta.get(f"{k}_{b}", np.nan)) for k in META_KEYS for b in bands}
    for i, b in enumerate(bands):
        if not np.isfinite(out[f"psfdepth_{b}"]):
            out[f"psfdepth_{b}"] = psfdepth_from_invvar(cut.invvar[i], out[f"psf_fwhm_{b}"], pixscale)
    return out


def make_anchor_stamps(anchors: pd.DataFrame, *, bricks_root: str | None = None, service: CutoutService | None = None,
                       size: int = 64, bands: str = "grz", pixscale: float = 0.262, storage_options=None) -> pa.Table:
    """One row per anchor: the anchor's columns, ``stamp_npz`` (dataset/stamp.py encoding),
    ``cutout_ok``/``cutout_reason``/``cutout_source``, ``maskbits_available``, ``brickname``,
    ``psf_fwhm_<b>`` (arcsec), ``psfdepth_<b>`` (1/nanomaggy^2), ``flux_<b>`` (nanomaggies),
    ``metadata_source``. A failed stamp keeps its row (``cutout_ok=False``, reason), never dropped."""
    from ..survey.cutout import cutout as brick_cutout

    if bricks_root is None and service is None:
        raise CutoutError("anchor stamps need a brick root (--bricks) or a cutout service (--service)")
    rows = []
    for rec in anchors.to_dict("records"):
        ra, dec = float(rec["ra"]), float(rec["dec"])
        cut, source, have_mb, meta, msrc = None, "", False, {}, "none"
        reasons = []
        if bricks_root is not None:
            c = brick_cutout(bricks_root, ra, dec, size, bands, options=storage_options)
            if c.ok:
                cut, source, have_mb = c, "bricks", True
                meta, msrc = brick_metadata(bricks_root, c.brickname, ra, dec, bands, options=storage_options)
            else:
                reasons.append(f"bricks: {c.reason}")
        if cut is None and service is not None:
            try:
                sc = service.fetch_cutout(ra, dec, size, bands)
                cut, source, have_mb = sc.cutout, "service", sc.maskbits_available
                if not cut.ok:
                    reasons.append(f"service: {cut.reason}")
                try:
                    meta = service.catalog_metadata(ra, dec, bands)
                    msrc = "service-tractor" if meta else "none"
                except CutoutError as exc:
                    log.warning("no catalog metadata for %s: %s", rec.get("anchor_id"), exc)
            except CutoutError as exc:
                reasons.append(f"service: {exc}")
        if cut is None:
            cut = Cutout.failed("; ".join(reasons), size, len(bands))
        md = _complete(meta, cut, bands, pixscale)
        if any(np.isfinite(md[f"psfdepth_{b}"]) and not np.isfinite(meta.get(f"psfdepth_{b}", np.nan)) for b in bands):
            msrc += "+invvar-depth"
        rows.append({
            **{k: rec.get(k) for k in ANCHOR_KEEP if k in rec},
            "stamp_npz": encode_stamp(cut.image, cut.invvar, cut.maskbits, grids=cut.grids),
            "cutout_ok": bool(cut.ok), "cutout_reason": cut.reason or ("; ".join(reasons) or None),
            "cutout_source": source, "maskbits_available": bool(have_mb), "brickname": cut.brickname,
            **md, "metadata_source": msrc,
        })
    return pa.Table.from_pylist(rows)


def fill_metadata(table: pd.DataFrame, columns: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(metadata arrays for a scorer, count of NaNs imputed per column).

    NaNs are replaced by the median of the finite values of the same column (never 0); a column
    with no finite value at all raises DataFileError naming it.
    """
    out, imputed = {}, {}
    for c in columns:
        if c not in table:
            raise DataFileError(f"anchor stamps lack metadata column {c!r}", field=c)
        v = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v)
        if bad.all() and len(v):
            raise DataFileError(f"no anchor has a value for {c!r}; cannot evaluate a model that uses it", field=c)
        if bad.any():
            v = np.where(bad, np.median(v[~bad]), v)
        out[c], imputed[c] = v.astype(np.float32), int(bad.sum())
    return out, imputed
