"""Write the synthetic sky in the DR10 release layout, every file as legacypipe writes it.

    <out>/survey-bricks.fits.gz                                    (all bricks, above the regions)
    <out>/south/survey-bricks-dr10-south.fits.gz                   (per-brick summary, depths in AB mag)
    <out>/south/coadd/<AAA>/<brick>/legacysurvey-<brick>-<kind>[-<band>].fits.fz
        image, invvar, nexp, depth, galdepth, psfsize per band; maskbits (int32)
    <out>/south/tractor/<AAA>/tractor-<brick>.fits                 (DR10 columns, no photo-z)
    <out>/south/sweep/10.1/sweep-<RRRsDDD>-<RRRsDDD>.fits          (5 x 5 deg sweeps, upper case)
    <out>/south/sweep/10.1-photo-z/sweep-<...>-pz.fits             (photo-z, row by row with the sweep)

Compression per file type is DR10's (:mod:`.dr10_files`: legacypipe ``survey.py``
``get_compression_args``): 100 x 100 tiles; image RICE SUBTRACTIVE_DITHER_2 on an absolute
1e-4 nanomaggy step with a ZDITHER0 fixed per brick and file (the same config gives identical
bytes); invvar RICE NO_DITHER q = 16; maskbits and nexp HCOMPRESS lossless; depth, galdepth,
psfsize GZIP unquantised. ``survey.synthetic.tile_size`` other than 100 is for tests only.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import numpy as np

from ..config import Config, config_hash
from .bricks import BRICKS_TABLE, REGION, coadd_relpath, tractor_relpath, write_bricks_table
from .dr10_files import DR10_TILE, write_coadd
from .synth_catalogs import write_bricks_summary, write_fits_table, write_sweeps
from .synth_geometry import SynthGrid, synthetic_bricks
from .synth_render import RenderedBrick, depth_pattern, render_brick
from .synth_spec import add_spectroscopy

SYNTH_NEXP = 3  # exposures per band everywhere in the synthetic sky (the catalogs' NOBS)

log = logging.getLogger(__name__)


def _header(grid: SynthGrid, sb, cfg: Config, kind: str, band: str | None):
    from astropy.io import fits

    h = fits.Header()
    for k, v in grid.header_wcs(sb.x0, sb.y0).items():
        h[k] = v
    b = sb.brick
    h["BRICKNAM"] = (b.brickname, "LegacySurvey brick RRRr[pm]DDd")
    h["BRICKID"] = (b.brickid, "LegacySurvey brick id")
    h["RAMIN"], h["RAMAX"], h["DECMIN"], h["DECMAX"] = b.ra1, b.ra2, b.dec1, b.dec2
    h["BRICKRA"], h["BRICKDEC"] = b.ra, b.dec
    h["DRVERSIO"] = (cfg.survey.release, "Survey data release number")
    h["SURVEYID"] = ("darkhaloscope synthetic", "not real data")
    h["CFGHASH"] = (config_hash(cfg), "darkhaloscope config hash")
    if band:
        h["FILTER"] = band
    h["IMTYPE"] = kind
    if kind == "image":
        h["BUNIT"] = ("nanomaggy", "AB mag = 22.5 - 2.5*log10(nanomaggy)")
        h["MAGZERO"] = 22.5
    elif kind in ("invvar", "depth", "galdepth"):
        h["BUNIT"] = ("1/nanomaggy^2", "inverse variance")
    elif kind == "psfsize":
        h["BUNIT"] = ("arcsec", "FWHM of Gaussian with the PSF Neff")
    return h


FILE_FORMAT = 4  # bump when the files change for the same config (caches key on it); 3: DR10 writer settings, 4: Tractor shape sign, z_spec/sigma_v


def _dither_seed(cfg: Config, brickid: int, kind: str, band: str | None) -> int:
    """ZDITHER0 of one file, 1..10000 (fpack's range), fixed by (seed, brick, file)."""
    code = zlib.crc32(f"{kind}-{band}".encode())
    return 1 + (brickid * 7919 + cfg.seed + code) % 10000


def write_brick(out: Path, cfg: Config, sb, rb: RenderedBrick) -> None:
    """Write one rendered brick's coadd files (all DR10 file types, :mod:`.dr10_files`) and
    Tractor catalog under the region folder ``out``."""
    grid = SynthGrid(cfg)
    name, bid = sb.brick.brickname, sb.brick.brickid
    tile = (cfg.survey.synthetic.tile_size,) * 2 if cfg.survey.synthetic.tile_size != DR10_TILE else None
    for b in rb.image:
        h = _header(grid, sb, cfg, "image", b)
        h["PSFSIZE"] = (rb.seeing[b], "[arcsec] FWHM of Gaussian with the PSF Neff")
        write_coadd(out / coadd_relpath(name, "image", b), rb.image[b], "image", h, _dither_seed(cfg, bid, "image", b), tile)
        write_coadd(out / coadd_relpath(name, "invvar", b), rb.invvar[b], "invvar", _header(grid, sb, cfg, "invvar", b), tile=tile)
        if not cfg.survey.synthetic.write_maps:
            continue
        weight = depth_pattern(sb.x0, sb.y0, sb.size)  # the depth maps follow the invvar's pattern
        nexp = np.full(rb.invvar[b].shape, SYNTH_NEXP, np.int16)
        write_coadd(out / coadd_relpath(name, "nexp", b), nexp, "nexp", _header(grid, sb, cfg, "nexp", b), tile=tile)
        for kind, value in (("depth", rb.psfdepth[b]), ("galdepth", rb.galdepth[b])):
            write_coadd(out / coadd_relpath(name, kind, b), weight * np.float32(value), kind, _header(grid, sb, cfg, kind, b), tile=tile)
        psfsize = np.full(rb.invvar[b].shape, rb.seeing[b], np.float32)
        write_coadd(out / coadd_relpath(name, "psfsize", b), psfsize, "psfsize", _header(grid, sb, cfg, "psfsize", b), tile=tile)
    write_coadd(out / coadd_relpath(name, "maskbits"), rb.maskbits, "maskbits", _header(grid, sb, cfg, "maskbits", None), tile=tile)
    write_fits_table(out / tractor_relpath(name), {k: v for k, v in rb.catalog.items() if k != "z_phot_median"})


def _make_brick(args) -> tuple:
    """Render and write one brick (a worker's job); returns what the catalogs need, not the pixels."""
    cfg, sb, bands, region = args
    rb = render_brick(cfg, sb, bands)
    if rb.catalog:  # part of the LRGs get a spectroscopic z and sigma_v (survey/synth_spec.py)
        rb.catalog = add_spectroscopy(cfg, dict(rb.catalog))
    write_brick(region, cfg, sb, rb)
    return sb, RenderedBrick({}, {}, None, rb.catalog, rb.seeing, rb.psfdepth, rb.galdepth)


def build_survey(cfg: Config, out: str | Path, bands: str | None = None) -> dict:
    """Render and write every synthetic brick in the DR10 layout under ``out`` (the release
    folder); returns a small summary whose ``root`` is the region folder a brick reader takes.

    Bricks are independent pure functions of (config, brick), so ``survey.synthetic.workers``
    processes render them in any order with identical files."""
    out = Path(out)
    region = out / REGION
    region.mkdir(parents=True, exist_ok=True)
    bricks = synthetic_bricks(cfg)
    bands = bands or cfg.survey.bands
    jobs = [(cfg, sb, bands, region) for sb in bricks]
    # 0 = one per CPU from 4 bricks up; small skies (tests) stay in this process (no fork of a process
    # that may hold threads, e.g. a Spark gateway)
    auto = (os.cpu_count() or 1) if len(jobs) >= 4 else 1
    workers = min(len(jobs), cfg.survey.synthetic.workers or auto)
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            rendered = list(pool.map(_make_brick, jobs))
    else:
        rendered = [_make_brick(j) for j in jobs]
    nobj = 0
    for sb, rb in rendered:
        nobj += len(rb.catalog.get("objid", []))
        log.info("brick %s: %d objects, r PSFSIZE %.2f\"", sb.brick.brickname, len(rb.catalog.get("objid", [])), rb.seeing.get("r", float("nan")))
    write_bricks_table(out / BRICKS_TABLE, [sb.brick for sb in bricks])
    write_bricks_summary(region, rendered, bands)
    sweeps = write_sweeps(region, [rb.catalog for _, rb in rendered])
    return {"bricks": [sb.brick.brickname for sb in bricks], "objects": nobj, "out": str(out), "root": str(region), "sweeps": sweeps}
