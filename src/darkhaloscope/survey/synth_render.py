"""Render one synthetic brick: images (nanomaggies), invvar (1/nanomaggy^2), maskbits, catalog.

Everything that can cross a brick edge is a function of sky position, not of the brick: the
sources (:mod:`.synth_sources`), the sky noise (one generator per 128 px block of the global
pixel grid and band), the bright-star masks and the extinction E(B-V)(ra, dec). Per brick are
only the seeing (``seeing_r_min``-``seeing_r_max`` in r; g = 1.06 r, z = 0.92 r, 1 % scatter)
and therefore the PSF a source is drawn with. With uniform seeing (min == max), the pixels a
brick layout produces are bit-identical whatever the layout (tested).

PSF: GalSim Moffat, beta = ``render.moffat_beta`` (3.5), with the effective area (Neff) of the
catalog's ``psfsize_*``, which follows DR10's convention (FWHM of the Gaussian of equal Neff;
``physics.psf.moffat_fwhm_for_psfsize``).
Galaxies: GalSim Sersic (DEV n=4, EXP/REX n=1, SER n) truncated at 8 half-light radii (the
catalog ``shape_r`` is the half-light radius of the truncated profile), sheared to axis ratio
q, convolved with the PSF, pixel-integrated. Catalog fluxes are the true, noiseless fluxes
after Galactic extinction (DR10 convention: ``flux = intrinsic * mw_transmission``).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..physics.psf import moffat_fwhm_for_psfsize
from .maskbits import BITS, bright_radius_arcsec, medium_radius_arcsec
from .synth_geometry import SynthBrick, SynthGrid
from .synth_sources import sources_in_box

NOISE_BLOCK = 128  # px; sky-noise generator block of the global pixel grid
SKY_SCALE = {"g": 0.6, "r": 1.0, "i": 1.3, "z": 2.2}  # per-pixel sky sigma relative to r (DR10 depths)
SEEING_SCALE = {"g": 1.06, "r": 1.0, "i": 0.96, "z": 0.92}  # FWHM relative to r (~lambda^-0.2)
EXT_COEF = {"g": 3.214, "r": 2.165, "i": 1.592, "z": 1.211, "w1": 0.184, "w2": 0.113}  # DR10 A/E(B-V)
MAX_HALF = 96  # px; largest render half-size
W1_SIGMA = 1.3  # nanomaggy; unWISE W1 flux error of a faint source
INVVAR_SCATTER = 0.015  # relative pixel-to-pixel scatter of the synthetic invvar


def ebv_at(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Synthetic Galactic E(B-V) (mag): a smooth 0.02-0.05 pattern on the sky."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    return 0.035 + 0.015 * np.sin(np.radians(ra) * 40.0) * np.cos(np.radians(dec) * 40.0)


def brick_seeing(cfg: Config, brickname: str, bands: str) -> dict[str, float]:
    """Per-brick PSFSIZE (arcsec, DR10 convention: FWHM of the Gaussian of equal Neff) per band,
    deterministic from (seed, brick name)."""
    s = cfg.survey.synthetic
    rng = np.random.default_rng([cfg.seed, 4242, zlib.crc32(brickname.encode())])
    fr = float(rng.uniform(s.seeing_r_min, s.seeing_r_max)) if s.seeing_r_max > s.seeing_r_min else float(s.seeing_r_min)
    jitter = rng.normal(0.0, 0.01, len(bands)) if s.seeing_r_max > s.seeing_r_min else np.zeros(len(bands))
    return {b: fr * SEEING_SCALE[b] * (1.0 + float(jitter[k]) if b != "r" else 1.0) for k, b in enumerate(bands)}


def sky_sigma(cfg: Config, band: str) -> float:
    """Per-pixel sky noise sigma (nanomaggy) of a band."""
    return cfg.survey.synthetic.sky_sigma_r * SKY_SCALE[band]


def noise_field(cfg: Config, band: str, x0: int, y0: int, nx: int, ny: int, stream: int = 777) -> np.ndarray:
    """Unit-sigma Gaussian noise on global pixels [x0, x0+nx) x [y0, y0+ny), by global block
    (``stream`` 777: the sky noise; 778: the invvar's pixel-to-pixel scatter)."""
    band_code = "grizw".index(band) + 1
    out = np.empty((ny, nx), np.float32)
    B = NOISE_BLOCK
    for by in range(math.floor(y0 / B), math.floor((y0 + ny - 1) / B) + 1):
        for bx in range(math.floor(x0 / B), math.floor((x0 + nx - 1) / B) + 1):
            rng = np.random.default_rng([cfg.seed, stream, band_code, bx + 2**30, by + 2**30])
            block = rng.standard_normal((B, B), dtype=np.float32)
            gx0, gy0 = bx * B, by * B
            sx0, sx1 = max(x0, gx0), min(x0 + nx, gx0 + B)
            sy0, sy1 = max(y0, gy0), min(y0 + ny, gy0 + B)
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = block[sy0 - gy0 : sy1 - gy0, sx0 - gx0 : sx1 - gx0]
    return out


def depth_pattern(x0: int, y0: int, n: int) -> np.ndarray:
    """Relative inverse variance (mean 1, +-5 %) on global pixels: a smooth exposure-depth pattern."""
    sx = np.sin(2 * np.pi * np.arange(x0, x0 + n, dtype=np.float32) / 700.0)
    cy = np.cos(2 * np.pi * np.arange(y0, y0 + n, dtype=np.float32) / 900.0)
    return (1.0 + 0.05 * np.outer(cy, sx)).astype(np.float32)  # separable: one outer product


@functools.lru_cache(maxsize=64)
def _fiber_table(n: float) -> tuple[np.ndarray, np.ndarray]:
    """(hlr grid arcsec, fraction of flux in a 1.5" diameter fibre under 1" FWHM Gaussian seeing)."""
    import galsim

    hlrs = np.geomspace(0.1, 4.0, 24)
    fr = []
    scale, npix = 0.05, 64
    yy, xx = (np.mgrid[0:npix, 0:npix] - (npix - 1) / 2.0) * scale
    inside = np.hypot(xx, yy) < 0.75
    for h in hlrs:
        gal = galsim.Sersic(n, half_light_radius=h, trunc=8 * h) if n > 0 else galsim.DeltaFunction()
        img = galsim.Convolve(gal, galsim.Gaussian(fwhm=1.0)).drawImage(nx=npix, ny=npix, scale=scale)
        fr.append(float(img.array[inside].sum()))
    return hlrs, np.array(fr)


def fiber_fraction(n: float, hlr: float) -> float:
    """Flux fraction in a DESI fibre (1.5" diameter, 1" Gaussian seeing); ellipticity ignored."""
    if n <= 0:
        return 1.0 - math.exp(-(0.75**2) / (2 * (1.0 / 2.3548) ** 2))
    hlrs, fr = _fiber_table(float(n))
    return float(np.interp(math.log(hlr), np.log(hlrs), fr))


def fiber_fractions(n: np.ndarray, hlr: np.ndarray) -> np.ndarray:
    """Vectorised :func:`fiber_fraction` (n = 0 for point sources)."""
    out = np.empty(len(n))
    for nv in np.unique(n):
        sel = n == nv
        if nv <= 0:
            out[sel] = fiber_fraction(0.0, 0.0)
        else:
            hlrs, fr = _fiber_table(float(nv))
            out[sel] = np.interp(np.log(hlr[sel]), np.log(hlrs), fr)
    return out


def mask_radius_arcsec(gaia_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(BRIGHT radius for G < 13, MEDIUM radius for G < 16), arcsec, as DR10 masks stars
    (:mod:`.maskbits`: MEDIUM R = 1630" x 1.396^-G, BRIGHT R/2)."""
    g = np.asarray(gaia_g, float)
    mag = np.where(g > 0, g, 99.0)
    return (np.where((g > 0) & (g < 13), bright_radius_arcsec(mag), 0.0),
            np.where((g > 0) & (g < 16), medium_radius_arcsec(mag), 0.0))


@dataclass
class RenderedBrick:
    """Arrays and catalog of one brick (global pixel origin x0, y0)."""

    image: dict
    invvar: dict
    maskbits: np.ndarray
    catalog: dict
    seeing: dict
    psfdepth: dict
    galdepth: dict


def _half_size(kind: str, hlr: float, mag_r: float, fwhm: float, scale: float) -> int:
    if kind == "star":
        h = fwhm / scale * (2.5 + 1.5 * max(0.0, 17.0 - mag_r))
    else:
        h = (8.0 * hlr + 3.0 * fwhm) / scale
    return int(min(MAX_HALF, max(8, math.ceil(h) + 2)))


def render_brick(cfg: Config, sb: SynthBrick, bands: str | None = None) -> RenderedBrick:
    """Render one synthetic brick. Pure function of (config, brick); see module doc."""
    import galsim

    bands = bands or cfg.survey.bands
    scale = cfg.survey.pixel_scale
    grid = SynthGrid(cfg)
    name = sb.brick.brickname
    n = sb.size
    x0, y0 = sb.x0, sb.y0
    seeing = brick_seeing(cfg, name, bands)
    gsp = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=3e-3)
    # seeing = DR10 PSFSIZE (Gaussian FWHM of equal Neff); the Moffat drawn has that Neff (physics.psf)
    beta = cfg.render.moffat_beta
    psfs = {b: galsim.Moffat(beta=beta, fwhm=moffat_fwhm_for_psfsize(seeing[b], beta, scale), gsparams=gsp) for b in bands}

    margin = MAX_HALF + 2
    src = sources_in_box(cfg, x0 - margin, x0 + n + margin, y0 - margin, y0 + n + margin)
    nsrc = len(src.get("x", []))
    ra, dec = grid.pix2world(src["x"], src["y"]) if nsrc else (np.zeros(0), np.zeros(0))
    ebv = ebv_at(ra, dec)

    bounds = galsim.BoundsI(x0, x0 + n - 1, y0, y0 + n - 1)  # GalSim x = column, global pixels
    ims = {b: galsim.ImageF(bounds, scale=scale) for b in bands}
    for k in range(nsrc):
        kind = src["kind"][k]
        xs, ys = float(src["x"][k]), float(src["y"][k])
        hlr = float(src["shape_r"][k])
        h = _half_size(kind, hlr, float(src["mag_r"][k]), max(seeing.values()), scale)
        ix, iy = int(round(xs)), int(round(ys))
        sbounds = galsim.BoundsI(ix - h, ix + h, iy - h, iy + h)
        overlap = sbounds & bounds
        if not overlap.isDefined():
            continue
        if kind != "star":
            q = (1 - math.hypot(src["shape_e1"][k], src["shape_e2"][k])) / (1 + math.hypot(src["shape_e1"][k], src["shape_e2"][k]))
            gal = galsim.Sersic(float(src["sersic"][k]), half_light_radius=hlr, trunc=8.0 * hlr, gsparams=gsp)
            gal = gal.shear(g1=float(src["shape_e1"][k]), g2=float(src["shape_e2"][k])) if q < 1 else gal
        for b in bands:
            flux = 10 ** (-0.4 * (float(src[f"mag_{b}"][k]) - 22.5)) * 10 ** (-0.4 * EXT_COEF[b] * float(ebv[k]))
            obj = psfs[b].withFlux(flux) if kind == "star" else galsim.Convolve(gal.withFlux(flux), psfs[b], gsparams=gsp)
            stamp = galsim.ImageF(sbounds, scale=scale)
            obj.drawImage(image=stamp, center=galsim.PositionD(xs, ys))
            ims[b][overlap] += stamp[overlap]

    # Sky noise and invvar, both functions of sky position: invvar = depth pattern x (1 + 1.5 %
    # pixel scatter, as a real coadd's varying exposure coverage gives: the DR6 brick's invvar
    # tiles quantise at q = 16 to ZSCALE ~1e-3 of the value) / sigma_band^2; noise 1/sqrt(invvar).
    image, invvar, psfdepth, galdepth = {}, {}, {}, {}
    weight = depth_pattern(x0, y0, n)
    for b in bands:
        sig = sky_sigma(cfg, b)
        iv = (weight * (1.0 + INVVAR_SCATTER * noise_field(cfg, b, x0, y0, n, n, stream=778)) / sig**2).astype(np.float32)
        image[b] = ims[b].array + noise_field(cfg, b, x0, y0, n, n) / np.sqrt(iv)
        invvar[b] = iv
        p = psfs[b].drawImage(nx=63, ny=63, scale=scale).array
        g = galsim.Convolve(galsim.Exponential(half_light_radius=0.45), psfs[b]).drawImage(nx=63, ny=63, scale=scale).array
        psfdepth[b] = float((p**2).sum() / sig**2)
        galdepth[b] = float((g**2).sum() / sig**2)

    maskbits = _maskbits(src, x0, y0, n, scale)
    if sb.margin:  # DR10: pixels outside the brick's unique area are NPRIMARY (legacypipe runbrick.py)
        inner = np.zeros((n, n), bool)
        inner[sb.margin : n - sb.margin, sb.margin : n - sb.margin] = True
        maskbits |= np.where(inner, np.int32(0), np.int32(1 << BITS["NPRIMARY"]))
    catalog = _catalog(cfg, sb, src, ra, dec, ebv, maskbits, seeing, psfdepth, galdepth, bands)
    return RenderedBrick(image, invvar, maskbits, catalog, seeing, psfdepth, galdepth)


def _maskbits(src: dict, x0: int, y0: int, n: int, scale: float) -> np.ndarray:
    """DR10 MASKBITS int32 [n, n] (SUB_BLOB is bit 16): MEDIUM and BRIGHT discs of the bright stars."""
    m = np.zeros((n, n), np.int32)
    if not src:
        return m
    rb, rm = mask_radius_arcsec(src["gaia_g"])
    for k in np.flatnonzero(rm > 0):
        for bit, rad in ((BITS["MEDIUM"], rm[k]), (BITS["BRIGHT"], rb[k])):
            if rad <= 0:
                continue
            rp = rad / scale
            xs, ys = src["x"][k] - x0, src["y"][k] - y0
            xa, xb = max(0, int(xs - rp)), min(n, int(xs + rp) + 2)
            ya, yb = max(0, int(ys - rp)), min(n, int(ys + rp) + 2)
            if xa >= xb or ya >= yb:
                continue
            yy, xx = np.mgrid[ya:yb, xa:xb]
            inside = (xx - xs) ** 2 + (yy - ys) ** 2 <= rp**2
            m[ya:yb, xa:xb] |= np.where(inside, np.int32(1 << bit), np.int32(0))
    return m


def _catalog(cfg, sb, src, ra, dec, ebv, maskbits, seeing, psfdepth, galdepth, bands) -> dict:
    """Tractor-like rows (DR10 lower-case columns) of the sources centred in the brick."""
    n, x0, y0 = sb.size, sb.x0, sb.y0
    if not src:
        return {}
    sel = (src["x"] >= x0 - 0.5) & (src["x"] < x0 + n - 0.5) & (src["y"] >= y0 - 0.5) & (src["y"] < y0 + n - 0.5)
    idx = np.flatnonzero(sel)
    m = len(idx)
    bx = (src["x"][idx] - x0).astype(np.float32)
    by = (src["y"][idx] - y0).astype(np.float32)
    ix = np.clip(np.round(bx).astype(int), 0, n - 1)
    iy = np.clip(np.round(by).astype(int), 0, n - 1)
    typ = src["type"][idx]
    cat: dict[str, np.ndarray] = {
        "release": np.full(m, cfg.survey.release, np.int16),
        "brickid": np.full(m, sb.brick.brickid, np.int32),
        "brickname": np.full(m, sb.brick.brickname, "<U8"),
        "objid": np.arange(m, dtype=np.int32),
        "brick_primary": sb.primary(src["x"][idx], src["y"][idx]),
        "type": typ,
        "ra": ra[idx], "dec": dec[idx], "bx": bx, "by": by,
        "ebv": ebv[idx].astype(np.float32),
    }
    ispsf = typ == "PSF"
    for b in ("g", "r", "i", "z"):
        if b not in bands:
            continue
        trans = 10 ** (-0.4 * EXT_COEF[b] * ebv[idx])
        flux = 10 ** (-0.4 * (src[f"mag_{b}"][idx] - 22.5)) * trans
        frac = fiber_fractions(src["sersic"][idx], src["shape_r"][idx])
        cat[f"flux_{b}"] = flux.astype(np.float32)
        cat[f"flux_ivar_{b}"] = np.where(ispsf, psfdepth[b], galdepth[b]).astype(np.float32)
        cat[f"fiberflux_{b}"] = (flux * frac).astype(np.float32)
        cat[f"fibertotflux_{b}"] = (flux * frac).astype(np.float32)
        cat[f"mw_transmission_{b}"] = trans.astype(np.float32)
        cat[f"nobs_{b}"] = np.full(m, 3, np.int16)
        cat[f"psfsize_{b}"] = np.full(m, seeing[b], np.float32)
        cat[f"psfdepth_{b}"] = np.full(m, psfdepth[b], np.float32)
        cat[f"galdepth_{b}"] = np.full(m, galdepth[b], np.float32)
    tw1 = 10 ** (-0.4 * EXT_COEF["w1"] * ebv[idx])
    cat["flux_w1"] = (10 ** (-0.4 * (src["mag_w1"][idx] - 22.5)) * tw1).astype(np.float32)
    cat["flux_ivar_w1"] = np.full(m, 1.0 / W1_SIGMA**2, np.float32)
    cat["mw_transmission_w1"] = tw1.astype(np.float32)
    cat["shape_r"] = src["shape_r"][idx].astype(np.float32)
    # Tractor's e1, e2 are in the sky frame (theta = atan2(e2, e1)/2 East of North); the galaxy was
    # drawn with GalSim shear (g1, g2) on the pixel grid, which is north-up, east-left: e = -g
    # (physics/population.py tractor_to_pixel_ellipticity, tested on a drawn ellipse).
    cat["shape_e1"] = (-src["shape_e1"][idx]).astype(np.float32)
    cat["shape_e2"] = (-src["shape_e2"][idx]).astype(np.float32)
    cat["sersic"] = src["sersic"][idx].astype(np.float32)
    cat["maskbits"] = maskbits[iy, ix].astype(np.int32)
    gaia = src["gaia_g"][idx]
    cat["gaia_phot_g_mean_mag"] = np.where(gaia < 21.0, gaia, 0.0).astype(np.float32)
    cat["ref_cat"] = np.where((gaia > 0) & (gaia < 21.0), "GE", "").astype("<U2")
    cat["z_phot_median"] = src["z_phot"][idx].astype(np.float32)
    return cat
