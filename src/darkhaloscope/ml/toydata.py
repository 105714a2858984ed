"""A small, learnable stamp dataset in the real schema, for tests and benchmarks.

Hosts are elliptical Sersic (n = 4) blobs plus Gaussian sky noise with the matching
``invvar``; injections add a PSF-blurred arc (a Gaussian ring of radius theta_E, modulated in
azimuth) whose peak signal-to-noise is drawn in a chosen range. Written with the stamp schema
(:func:`darkhaloscope.dataset.schema.rows_to_table`) to
``<root>/split=<split>/part-<k:05d>.parquet``, exactly the layout ``generate`` writes.
It is NOT a physical simulation (use the Spark pipeline for that): it only has to be a
dataset on which a network can learn something in two CPU epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..dataset.schema import rows_to_table
from ..dataset.stamp import encode_arc, encode_stamp

PIXEL_SCALE = 0.262  # arcsec / pixel (DR10)
BAND_SIGMA = np.array([0.004, 0.006, 0.012], dtype=np.float32)  # sky sigma g, r, z (nanomaggies)


def make_stamp(rng: np.random.Generator, size: int = 64, inject: bool = False, arc_snr_range: tuple[float, float] = (4.0, 20.0)) -> dict:
    """One synthetic stamp's arrays and metadata (image nanomaggies, invvar 1/nanomaggy^2)."""
    c = (size - 1) / 2.0
    y, x = np.mgrid[:size, :size].astype(np.float32)
    psf_fwhm_r = float(rng.uniform(0.9, 1.6))  # arcsec
    noise_scale = float(rng.uniform(0.7, 1.4))
    sigma = BAND_SIGMA * noise_scale
    # host: Sersic n=4 profile, random size, axis ratio, angle and brightness
    q, ang = rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    dx, dy = x - c - rng.normal(0, 0.3), y - c - rng.normal(0, 0.3)
    u = dx * np.cos(ang) + dy * np.sin(ang)
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / q
    r_e = rng.uniform(1.5, 4.0)  # pixels
    prof = np.exp(-7.67 * ((np.hypot(u, v) + 0.3) / r_e) ** 0.25)
    prof /= prof.sum()
    flux_r = float(rng.uniform(2.0, 20.0))  # nanomaggies
    colours = np.array([0.45, 1.0, 1.6], dtype=np.float32)
    image = colours[:, None, None] * flux_r * prof[None]
    row = {"psf_fwhm_r": psf_fwhm_r, "flux_r": flux_r}
    arc = np.zeros_like(image)
    if inject:
        theta_e = float(rng.uniform(0.6, 2.4))  # arcsec
        radius = theta_e / PIXEL_SCALE
        width = max(psf_fwhm_r / PIXEL_SCALE / 2.355, 0.8)
        phi = np.arctan2(y - c, x - c)
        shape = np.exp(-0.5 * ((np.hypot(x - c, y - c) - radius) / width) ** 2)
        shape *= (1.0 + np.cos(phi - rng.uniform(0, 2 * np.pi))) ** 2 / 4.0
        snr = float(rng.uniform(*arc_snr_range))
        arc_colour = np.array([1.0, 0.9, 0.7], dtype=np.float32)
        arc = (arc_colour[:, None, None] * shape[None]).astype(np.float32)
        arc *= snr / (arc[1] / sigma[1]).max()
        row.update(theta_e=theta_e, arc_snr=snr, arc_snr_sum=float((arc[1] / sigma[1]).sum()),
                   arc_flux_g=float(arc[0].sum()), arc_flux_r=float(arc[1].sum()), arc_flux_z=float(arc[2].sum()),
                   magnification=float(rng.uniform(3, 20)))
    noise = rng.standard_normal(image.shape).astype(np.float32) * sigma[:, None, None]
    image = (image + arc + noise).astype(np.float32)
    invvar = np.broadcast_to((1.0 / sigma**2)[:, None, None], image.shape).astype(np.float32)
    sig_psf = psf_fwhm_r / PIXEL_SCALE / 2.355
    row["psfdepth_r"] = float(1.0 / (sigma[1] ** 2 * 4 * np.pi * sig_psf**2))
    row["image"], row["invvar"], row["arc"] = image, invvar, arc
    return row


def make_rows(split: str, n: int, seed: int = 0, start_id: int = 0, size: int = 64, n_failed: int = 0,
              arc_snr_range: tuple[float, float] = (4.0, 20.0)) -> list[dict]:
    """``n`` stamp rows (alternating control / injection) plus ``n_failed`` cutout_ok=false rows."""
    rows = []
    for i in range(n + n_failed):
        task_id = start_id + i
        rng = np.random.default_rng([seed, task_id])
        inject = i % 2 == 1
        base = {
            "task_id": task_id, "galaxy_id": f"10000_1_{task_id}", "brickname": "1500p100",
            "ra": 150.0 + 1e-4 * i, "dec": 10.0, "split": split,
            "role": "injection" if inject else "control", "seed": seed,
            "config_hash": "toy", "code_version": "toy",
        }
        if i >= n:  # a failed cutout: no pixels, a reason
            base.update(cutout_ok=False, cutout_reason="toy: off brick")
            rows.append(base)
            continue
        s = make_stamp(rng, size, inject, arc_snr_range)
        base.update(cutout_ok=True, stamp_npz=encode_stamp(s.pop("image"), s.pop("invvar"), np.zeros((size, size), np.int32)))
        arc = s.pop("arc")
        if inject:
            base["arc_npz"] = encode_arc(arc)
        base.update(s)
        rows.append(base)
    return rows


def write_toy_dataset(root: str | Path, n_per_split: dict[str, int], seed: int = 0, shards: int = 2,
                      row_group_rows: int = 64, n_failed: int = 4, size: int = 64,
                      arc_snr_range: tuple[float, float] = (4.0, 20.0), compression: str = "gzip") -> Path:
    """Write ``<root>/split=<split>/part-<k:05d>.parquet`` for each split; returns ``root``.

    Parquet settings follow ``dataset/writer.py``: gzip level 6 (or ``compression``), no
    dictionary encoding of the pixel blobs.
    """
    root = Path(root)
    start = 0
    for split, n in n_per_split.items():
        rows = make_rows(split, n, seed=seed, start_id=start, size=size, n_failed=n_failed, arc_snr_range=arc_snr_range)
        start += len(rows) + 1000
        folder = root / f"split={split}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(shards):
            part = rows[k::shards]
            pq.write_table(rows_to_table(part), folder / f"part-{k:05d}.parquet", row_group_size=row_group_rows,
                           compression=compression, compression_level=6 if compression in ("gzip", "zstd") else None,
                           use_dictionary=["galaxy_id", "brickname", "split", "role", "cutout_reason", "config_hash", "code_version"])
    return root
