"""Catalog files of the synthetic sky in DR10's layout: sweeps 10.1, their photo-z files, and
the per-brick summary ``survey-bricks-dr10-south.fits.gz``.

- Sweeps (DR10 ``south/sweep/10.1/``): the BRICK_PRIMARY Tractor rows of every brick whose centre lies in a
  5 x 5 deg box, upper-case column names, named ``sweep-<RRRsDDD>-<RRRsDDD>.fits`` by the box's
  corners (RA and Dec in whole degrees, ``p``/``m`` for the Dec sign), rows in brick then objid
  order; DR10 sweeps carry no photo-z.
- Photo-z (DR10 ``south/sweep/10.1-photo-z/``, Zhou et al. 2021 random-forest photo-z): one
  ``<sweep>-pz.fits`` per sweep, the same rows in the same order, columns RELEASE, BRICKID, OBJID,
  Z_PHOT_MEAN, Z_PHOT_MEDIAN, Z_PHOT_STD, Z_PHOT_L68, Z_PHOT_U68 (-99 where there is none).
- Summary: BRICKNAME, BRICKID, RA, DEC, NEXP_<B>, PSFSIZE_<B> (arcsec), PSFDEPTH_<B> and
  GALDEPTH_<B> as 5-sigma AB magnitudes (DR10's summary convention: -2.5 (log10(5 / sqrt(depth)) - 9)),
  EBV (mag).
"""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

import numpy as np

from .bricks import BRICKS_SUMMARY, PHOTOZ_DIR, SWEEP_DIR

SWEEP_BOX_DEG = 5
PZ_MISSING = -99.0
PZ_STREAM = 9090  # generator stream of the synthetic photo-z errors
PZ_SCATTER = 0.02  # photo-z error sigma / (1 + z) of the synthetic LRGs (DESI LRGs: ~0.02)


def fits_table_bytes(cols: dict, upper: bool = False) -> bytes:
    """Bytes of a FITS file with one binary table of ``cols`` (numpy arrays; names upper-cased if asked)."""
    from astropy.io import fits

    out = []
    for name, arr in cols.items():
        arr = np.asarray(arr)
        key = name.upper() if upper else name
        if arr.dtype.kind == "U":
            width = max(1, int(arr.dtype.itemsize // 4))
            out.append(fits.Column(key, f"{width}A", array=arr.astype(f"S{width}")))
        elif arr.dtype == bool:
            out.append(fits.Column(key, "L", array=arr))
        else:
            fmt = {"i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D"}[arr.dtype.str[1:]]
            out.append(fits.Column(key, fmt, array=arr))
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(out)]).writeto(buf, checksum=False)
    return buf.getvalue()


def write_fits_table(path: Path, cols: dict, upper: bool = False) -> None:
    """Write a FITS table (gzip with mtime 0 when the name ends in .gz: same rows, same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = fits_table_bytes(cols, upper)
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def _deg(v: float, ra: bool) -> str:
    if ra:
        return f"{int(v) % 360:03d}"
    return f"{'p' if v >= 0 else 'm'}{abs(int(v)):03d}"


def sweep_name(ra: float, dec: float) -> str:
    """Name of the 5 x 5 deg sweep holding (ra, dec) degrees, e.g. ``sweep-150p005-155p010.fits``."""
    r0 = SWEEP_BOX_DEG * math.floor(ra / SWEEP_BOX_DEG)
    d0 = SWEEP_BOX_DEG * math.floor(dec / SWEEP_BOX_DEG)
    return f"sweep-{_deg(r0, True)}{_deg(d0, False)}-{_deg(r0 + SWEEP_BOX_DEG, True)}{_deg(d0 + SWEEP_BOX_DEG, False)}.fits"


def _photoz(cat: dict, n: int) -> dict:
    """Photo-z columns of a brick's rows: the synthetic true z with DESI-LRG-like scatter (LRGs)."""
    z_true = np.asarray(cat.get("z_phot_median", np.full(n, np.nan)), np.float64)
    has = np.isfinite(z_true)
    # one generator per brick (objid order): the same brick gets the same photo-z in any layout
    brickid = int(np.asarray(cat["brickid"])[0]) if n else 0
    g = np.random.default_rng([PZ_STREAM, brickid]).standard_normal(n)
    sig = PZ_SCATTER * (1.0 + np.where(has, z_true, 0.0))
    z = np.where(has, z_true + sig * g, PZ_MISSING)
    return {
        "release": np.asarray(cat["release"], np.int16), "brickid": np.asarray(cat["brickid"], np.int32),
        "objid": np.asarray(cat["objid"], np.int32),
        "z_phot_mean": z.astype(np.float32), "z_phot_median": z.astype(np.float32),
        "z_phot_std": np.where(has, sig, PZ_MISSING).astype(np.float32),
        "z_phot_l68": np.where(has, z - sig, PZ_MISSING).astype(np.float32),
        "z_phot_u68": np.where(has, z + sig, PZ_MISSING).astype(np.float32),
    }


def write_sweeps(region: Path, catalogs: list[dict]) -> list[str]:
    """Write the sweeps and their photo-z files of the bricks' catalogs; returns sweep names."""
    groups: dict[str, list[dict]] = {}
    for cat in catalogs:
        if len(cat.get("objid", [])):  # sweeps hold BRICK_PRIMARY rows only (an object in two bricks' images once)
            primary = np.asarray(cat["brick_primary"], bool)
            cat = {k: np.asarray(v)[primary] for k, v in cat.items()}
        if not len(cat.get("objid", [])):
            continue
        # a brick goes to the sweep of its centre (rows of one brick stay together)
        name = sweep_name(float(np.mean(cat["ra"])), float(np.mean(cat["dec"])))
        groups.setdefault(name, []).append(cat)
    for name, cats in sorted(groups.items()):
        keys = [k for k in cats[0] if k != "z_phot_median"]
        rows = {k: np.concatenate([np.asarray(c[k]) for c in cats]) for k in keys}
        write_fits_table(region / SWEEP_DIR / name, rows, upper=True)
        pz = [_photoz(c, len(c["objid"])) for c in cats]
        pzrows = {k: np.concatenate([p[k] for p in pz]) for k in pz[0]}
        write_fits_table(region / PHOTOZ_DIR / name.replace(".fits", "-pz.fits"), pzrows, upper=True)
    return sorted(groups)


def depth_mag(depth: float) -> float:
    """5-sigma AB magnitude of a point-source/galaxy depth (1/nanomaggy^2): 22.5 - 2.5 log10(5 / sqrt(depth))."""
    return float(22.5 - 2.5 * math.log10(5.0 / math.sqrt(depth))) if depth > 0 else 0.0


def write_bricks_summary(region: Path, rendered: list, bands: str) -> None:
    """``survey-bricks-dr10-south.fits.gz`` of the rendered bricks [(SynthBrick, RenderedBrick)]."""
    from .synth_render import ebv_at

    cols: dict[str, np.ndarray] = {
        "brickname": np.array([sb.brick.brickname for sb, _ in rendered]),
        "brickid": np.array([sb.brick.brickid for sb, _ in rendered], np.int32),
        "ra": np.array([sb.brick.ra for sb, _ in rendered]),
        "dec": np.array([sb.brick.dec for sb, _ in rendered]),
    }
    for b in bands:
        cols[f"nexp_{b}"] = np.full(len(rendered), 3, np.int16)
        cols[f"psfsize_{b}"] = np.array([rb.seeing[b] for _, rb in rendered], np.float32)
        cols[f"psfdepth_{b}"] = np.array([depth_mag(rb.psfdepth[b]) for _, rb in rendered], np.float32)
        cols[f"galdepth_{b}"] = np.array([depth_mag(rb.galdepth[b]) for _, rb in rendered], np.float32)
    cols["ebv"] = ebv_at(cols["ra"], cols["dec"]).astype(np.float32)
    write_fits_table(region / BRICKS_SUMMARY, cols, upper=True)
