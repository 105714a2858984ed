"""Anchors (known lenses, impostors) as host rows: the stage job over an anchor table, and the
one reader the evaluation uses (:func:`load_anchor_stamps`).

``anchors cutouts`` = :func:`stage_anchors`: the anchors become a position table
(:func:`anchor_positions`: ``task_id`` from the anchor id, ``split`` test, ``role`` known_lens,
the anchor's columns, and its metadata under the task table's names) and the stage job
(``spark/stage.py``, the code that makes training hosts) cuts them: from the bricks when a root
is given (native pixels, the same box convention, stored as the file's integers), else or when
that fails from the Legacy Surveys cutout service (resampled, stored raw, ``stamp_source =
cutout_service`` and a note that it serves no maskbits). The result is a host table
(``dataset/hosts.py``) read like any other.

Metadata (never zeros, the seeds' mistake): PSF FWHM, PSF depth and host flux per band from
(1) the nearest Tractor row within 1.5" (brick ``tractor/`` file, or the service's catalog
cutout), else (2) the brick's ``psfsize_<b>`` in survey-bricks, and PSF depth from the stamp's
own invvar when the catalog has none: for a Gaussian PSF of width sigma (pixels) the PSF-flux
inverse variance is ``median(invvar) * 4 pi sigma^2`` (1/nanomaggy^2). What is still unknown stays
NaN and ``metadata_source`` says where each value came from; :func:`fill_metadata` imputes NaNs
from the other anchors' median and counts them, for scorers that cannot take NaN.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import CutoutError, DataFileError
from ..survey.cutout import Cutout
from ..survey.cutout_service import CutoutService, ServiceOptions, nearest_metadata

log = logging.getLogger(__name__)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
META_KEYS = ("psf_fwhm", "psfdepth", "flux")
TASK_NAMES = {"psf_fwhm": "psfsize", "psfdepth": "psfdepth", "flux": "flux"}  # metadata -> task-table column prefix
ANCHOR_KEEP = ("anchor_id", "name", "anchor_set", "set_ground", "set_slacs_bells", "set_ground_other",
               "set_other", "grade", "references", "catalogs", "lens_type", "z_lens", "theta_e", "in_dr10")
ANCHOR_ROLE = "known_lens"
ANCHOR_TABLE = "anchor_stamps"  # stage.name of the anchors' host table
NO_MASKBITS = "no maskbits: the cutout service does not serve them"


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


def anchor_task_id(anchor_id: str) -> int:
    """A stable non-negative int64 task id of an anchor (blake2b of its id, 62 bits)."""
    return int.from_bytes(hashlib.blake2b(str(anchor_id).encode(), digest_size=8).digest(), "little") >> 2


def anchor_positions(anchors: pd.DataFrame, *, bricks_root: str | None = None, service: CutoutService | None = None,
                     bands: str = "grz", storage_options=None) -> pa.Table:
    """The position table of ``anchors`` for the stage job: identity (``task_id``, ``galaxy_id`` =
    anchor id, ``brickname`` from survey-bricks or "", ``ra``, ``dec``, ``split`` test, ``role``
    known_lens), the anchor's columns, ``psfsize_<b>`` (arcsec), ``psfdepth_<b>``
    (1/nanomaggy^2), ``flux_<b>`` (nanomaggies) and ``metadata_source``."""
    from ..survey.brick_reader import BrickReader

    table = BrickReader(bricks_root, options=storage_options).table() if bricks_root else None
    rows = []
    for rec in anchors.to_dict("records"):
        ra, dec = float(rec["ra"]), float(rec["dec"])
        brick = table.find(ra, dec) if table is not None else None
        brickname = brick.brickname if brick is not None else ""
        meta, msrc = {}, "none"
        if bricks_root and brickname:
            meta, msrc = brick_metadata(bricks_root, brickname, ra, dec, bands, options=storage_options)
        if not meta and service is not None:
            try:
                meta = service.catalog_metadata(ra, dec, bands)
                msrc = "service-tractor" if meta else "none"
            except CutoutError as exc:
                log.warning("no catalog metadata for %s: %s", rec.get("anchor_id"), exc)
        row = {"task_id": anchor_task_id(rec["anchor_id"]), "galaxy_id": str(rec["anchor_id"]), "brickname": brickname,
               "ra": ra, "dec": dec, "split": "test", "role": ANCHOR_ROLE}
        row.update({k: rec.get(k) for k in ANCHOR_KEEP if k in rec})
        for k in META_KEYS:
            for b in bands:
                row[f"{TASK_NAMES[k]}_{b}"] = float(meta.get(f"{k}_{b}", np.nan))
        row["metadata_source"] = msrc
        rows.append(row)
    return pa.Table.from_pylist(rows)


@dataclass(frozen=True)
class AnchorCutter:
    """The stage job's row maker for anchors: the bricks first (when the job has a root), the
    cutout service (``service``: its options; None = none) as the fallback. Picklable."""

    service: ServiceOptions | None = None

    def __call__(self, task: Mapping[str, Any], res) -> dict:
        from ..dataset.hosts import host_row

        cfg, reasons = res.cfg, []
        size, bands = cfg.survey.stamp_size, cfg.survey.bands
        if res.ctx.bricks:
            cut = res.reader.cutout(task["ra"], task["dec"], size, bands, brickname=task.get("brickname") or None)
            if cut.ok:
                return host_row(task, cut, cfg, source="bricks")
            reasons.append(f"bricks: {cut.reason}")
        if self.service is not None:
            try:
                sc = CutoutService(self.service).fetch_cutout(float(task["ra"]), float(task["dec"]), size, bands)
                cut = sc.cutout
                if cut.ok and not sc.maskbits_available:
                    cut.note = "; ".join(n for n in (cut.note, NO_MASKBITS) if n)
                if cut.ok:
                    return host_row(task, cut, cfg, source="cutout_service")
                reasons.append(f"service: {cut.reason}")
            except CutoutError as exc:
                reasons.append(f"service: {exc}")
        return host_row(task, Cutout.failed("; ".join(reasons) or "no brick root and no cutout service", size, len(bands)), cfg)


def stage_anchors(anchors: pd.DataFrame, out: str, *, bricks_root: str | None = None, service_options: ServiceOptions | None = None,
                  size: int = 64, bands: str = "grz", storage_options=None) -> dict:
    """Stage ``anchors`` into the host table ``<out>/anchor_stamps`` (one process: anchors are
    few); returns the stage summary. The positions go to ``<out>/anchor_positions.parquet``."""
    import pyarrow.parquet as pq

    from ..config import Config, replace
    from ..spark.stage import run_multiprocessing

    if bricks_root is None and service_options is None:
        raise CutoutError("anchor stamps need a brick root (--bricks) or a cutout service (--service)")
    service = CutoutService(service_options) if service_options is not None else None
    positions = anchor_positions(anchors, bricks_root=bricks_root, service=service, bands=bands, storage_options=storage_options)
    Path(out).mkdir(parents=True, exist_ok=True)
    pos_file = str(Path(out) / "anchor_positions.parquet")
    pq.write_table(positions, pos_file)
    cfg = replace(Config(), **{"survey.stamp_size": size, "survey.bands": bands, "stage.name": ANCHOR_TABLE, "generate.n_partitions": 1})
    return run_multiprocessing(cfg, pos_file, bricks_root or "", out, options=storage_options, processes=1,
                               task_fn=AnchorCutter(service_options))


def load_anchor_stamps(path: str | Path, options=None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """(table of ok rows without blobs, images float32 [N, B, S, S], info) of an anchors' host
    table (``anchors cutouts``). Metadata under the evaluation's names (``psf_fwhm_<b>`` from
    ``psfsize_<b>``; ``psfdepth_<b>`` from the stamp's invvar where the catalog had none),
    ``cutout_source`` (bricks | service) and ``maskbits_available``."""
    import pyarrow.compute as pc

    from ..dataset.hosts import read_host_rows
    from ..dataset.stamp import decode_stamp
    from ..errors import DatasetError

    try:
        tbl = read_host_rows(str(path), options=options)
    except DatasetError:
        raise DataFileError("anchor stamps not found (make them with `darkhaloscope anchors cutouts`)", path=str(path)) from None
    for c in ("anchor_id", "stamp_npz", "cutout_ok"):
        if c not in tbl.column_names:
            raise DataFileError(f"anchor stamps lack column {c!r}", path=str(path), field=c)
    tbl = tbl.sort_by("task_id")
    ok = np.asarray(tbl["cutout_ok"].to_numpy(zero_copy_only=False), bool)
    info = {"n_rows": int(len(ok)), "n_cutout_failed": int((~ok).sum())}
    tbl = tbl.filter(pc.field("cutout_ok"))
    stamps = [decode_stamp(b.as_py()) for b in tbl["stamp_npz"]]
    images = np.stack([s["image"] for s in stamps]) if stamps else np.zeros((0, 3, 64, 64), np.float32)
    df = tbl.drop_columns(["stamp_npz"]).to_pandas()
    bands = str(df["bands"].iloc[0]) if len(df) and "bands" in df else "grz"
    pix = 0.262
    for i, b in enumerate(bands):
        if f"psf_fwhm_{b}" not in df and f"psfsize_{b}" in df:
            df[f"psf_fwhm_{b}"] = df[f"psfsize_{b}"]
        if f"psfdepth_{b}" in df and f"psf_fwhm_{b}" in df:
            depth = df[f"psfdepth_{b}"].to_numpy(float).copy()
            for j in np.flatnonzero(~np.isfinite(depth)):
                depth[j] = psfdepth_from_invvar(stamps[j]["invvar"][i], float(df[f"psf_fwhm_{b}"].iloc[j]), pix)
            filled = np.isfinite(depth) & ~np.isfinite(df[f"psfdepth_{b}"].to_numpy(float))
            if filled.any() and "metadata_source" in df:
                df.loc[filled, "metadata_source"] = df.loc[filled, "metadata_source"].where(
                    df.loc[filled, "metadata_source"].str.endswith("+invvar-depth"), df.loc[filled, "metadata_source"] + "+invvar-depth")
            df[f"psfdepth_{b}"] = depth
    if "stamp_source" in df:
        df["cutout_source"] = df["stamp_source"].map({"bricks": "bricks", "cutout_service": "service"}).fillna(df["stamp_source"])
        df["maskbits_available"] = ~df["cutout_note"].fillna("").str.contains("no maskbits")
        info["cutout_source"] = {str(k): int(v) for k, v in df["cutout_source"].value_counts().items()}
        info["n_without_maskbits"] = int((~df["maskbits_available"]).sum())
    return df, images.astype(np.float32), info


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
