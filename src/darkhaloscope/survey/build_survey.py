"""Write the synthetic sky in the DR10 file layout.

    <out>/survey-bricks.fits.gz
    <out>/coadd/<AAA>/<brick>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz   (RICE_1, tiled)
    <out>/coadd/<AAA>/<brick>/legacysurvey-<brick>-maskbits.fits.fz
    <out>/tractor/<AAA>/tractor-<brick>.fits                                        (DR10 columns)

Images are Rice tile-compressed with SUBTRACTIVE_DITHER_1 quantisation and a dither seed fixed
per brick, so the same config gives identical bytes, with the steps of real Legacy Surveys coadds
(measured on the DR6 brick in ../shared/data): image pixels on an absolute step of 1e-4
nanomaggy (ZSCALE = 1e-4 in every tile there), invvar on a step of ~1e-3 of its value (ZSCALE
~61 on invvar ~69,000 there; the synthetic invvar is smooth, so fpack's noise-relative
``q`` would quantise it finer than float32). (SUBTRACTIVE_DITHER_2, which DR10 uses, is not
used: astropy 8 wrote different bytes for constant tiles on repeated runs.) Maskbits (int16) are
compressed losslessly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import Config, config_hash
from .bricks import coadd_relpath, tractor_relpath, write_bricks_table
from .synth_geometry import SynthGrid, synthetic_bricks
from .synth_render import RenderedBrick, render_brick

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
    elif kind == "invvar":
        h["BUNIT"] = ("1/nanomaggy^2", "inverse variance")
    return h


FILE_FORMAT = 2  # bump when the files change for the same config (caches key on it)
IMAGE_QUANT_STEP = 1e-4  # nanomaggy: absolute quantisation step of DR10 coadd images
INVVAR_QUANT_FRACTION = 1e-3  # invvar quantisation step / median invvar (DR6 brick: 61 / 69,000)


def _write_fz(path: Path, data: np.ndarray, header, tile: int, dither_seed: int, step: float | None = None) -> None:
    """Rice tile-compressed file; float data quantised on the absolute ``step`` (data units)."""
    from astropy.io import fits

    kwargs = dict(compression_type="RICE_1", tile_shape=(tile, tile))
    if data.dtype.kind == "f":
        # a negative quantize_level is an absolute step (cfitsio), as the DR10 coadds use
        kwargs.update(quantize_level=-float(step), quantize_method=1, dither_seed=dither_seed)
    hdu = fits.CompImageHDU(data=data, header=header, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True, checksum=False)


def _write_tractor(path: Path, cat: dict) -> None:
    from astropy.io import fits

    cols = []
    for name, arr in cat.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "U":
            width = max(1, int(arr.dtype.itemsize // 4))
            cols.append(fits.Column(name, f"{width}A", array=arr.astype(f"S{width}")))
        elif arr.dtype == bool:
            cols.append(fits.Column(name, "L", array=arr))
        else:
            fmt = {"i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D"}[arr.dtype.str[1:]]
            cols.append(fits.Column(name, fmt, array=arr))
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.BinTableHDU.from_columns(cols)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True, checksum=False)


def write_brick(out: Path, cfg: Config, sb, rb: RenderedBrick) -> None:
    """Write one rendered brick's coadd files and Tractor catalog under ``out``."""
    grid = SynthGrid(cfg)
    tile = min(cfg.survey.synthetic.tile_size, sb.size)
    seed = 1 + (sb.brick.brickid * 7919 + cfg.seed) % 10000  # fpack dither seeds are 1..10000
    name = sb.brick.brickname
    for b in rb.image:
        h = _header(grid, sb, cfg, "image", b)
        h["PSFSIZE"] = (rb.seeing[b], "[arcsec] FWHM of Gaussian with the PSF Neff")
        _write_fz(out / coadd_relpath(name, "image", b), rb.image[b].astype(np.float32), h, tile, seed, IMAGE_QUANT_STEP)
        invvar_step = INVVAR_QUANT_FRACTION * float(np.median(rb.invvar[b]))
        _write_fz(out / coadd_relpath(name, "invvar", b), rb.invvar[b], _header(grid, sb, cfg, "invvar", b), tile, seed, invvar_step)
    _write_fz(out / coadd_relpath(name, "maskbits"), rb.maskbits, _header(grid, sb, cfg, "maskbits", None), tile, seed)
    _write_tractor(out / tractor_relpath(name), rb.catalog)


def build_survey(cfg: Config, out: str | Path, bands: str | None = None) -> dict:
    """Render and write every synthetic brick under ``out``; returns a small summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bricks = synthetic_bricks(cfg)
    bands = bands or cfg.survey.bands
    extra: dict[str, list] = {f"psfsize_{b}": [] for b in bands}
    nobj = 0
    for sb in bricks:
        rb = render_brick(cfg, sb, bands)
        write_brick(out, cfg, sb, rb)
        for b in bands:
            extra[f"psfsize_{b}"].append(rb.seeing[b])
        nobj += len(rb.catalog.get("objid", []))
        log.info("brick %s: %d objects, r FWHM %.2f\"", sb.brick.brickname, len(rb.catalog.get("objid", [])), rb.seeing.get("r", float("nan")))
    write_bricks_table(out / "survey-bricks.fits.gz", [sb.brick for sb in bricks], {k: np.array(v) for k, v in extra.items()})
    return {"bricks": [sb.brick.brickname for sb in bricks], "objects": nobj, "out": str(out)}
