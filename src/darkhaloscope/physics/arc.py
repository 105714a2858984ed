"""The noiseless arc of one injection: the lensed unit-flux image, then each band's PSF and flux.

Split in two so the acceptance loop (physics/trials.py) can decide on the unconvolved image
(magnification, an SNR bound) before paying for the per-band convolutions. Units: images in
nanomaggies per pixel, magnitudes AB, FWHM and positions in arcsec.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from ..config import Config
from ..sources.colours import mag_to_nanomaggies
from .fastrender import render_unit_fast
from .params import LensParams
from .psf import convolve_bands, moffat_fwhm_for_psfsize, moffat_kernel
from .render import SourcePlacement


def render_unit(template: np.ndarray, lens: LensParams, src: SourcePlacement, cfg: Config, supersampling: int) -> np.ndarray:
    """Lensed image of the unit-flux template, float [S, S], before the PSF (traced once for all bands)."""
    r = cfg.render
    return render_unit_fast(
        template, lens, src, cfg.survey.stamp_size, cfg.survey.pixel_scale, supersampling,
        faint_supersampling=r.faint_supersampling, core_fraction=r.core_fraction, ray_spacing=r.ray_spacing,
    )


def bands_from_unit(unit: np.ndarray, mags: Mapping[str, float], fwhms: Mapping[str, float], cfg: Config) -> np.ndarray:
    """Arc float32 [B, S, S] (bands of ``cfg.survey.bands``): ``unit`` convolved with each band's
    Moffat times the band flux 10^((22.5 - mags[b]) / 2.5). ``fwhms[b]`` is DR10's PSFSIZE (arcsec:
    the FWHM of the Gaussian with the PSF's effective area); the Moffat drawn has that effective
    area (:func:`kernel_fwhm`). The one PSF step of every painted role (arcs and roles.py's negatives)."""
    bands = cfg.survey.bands
    flux = [float(mag_to_nanomaggies(float(mags[b]))) for b in bands]
    r = cfg.render
    return convolve_bands(unit, [kernel_fwhm(fwhms[b], cfg) for b in bands], cfg.survey.pixel_scale, r.moffat_beta, r.psf_flux_fraction, scale=flux)


def kernel_fwhm(psfsize: float, cfg: Config) -> float:
    """FWHM (arcsec) of the Moffat (beta ``render.moffat_beta``) whose effective area equals that of
    DR10's ``psfsize`` (arcsec; physics.psf.moffat_fwhm_for_psfsize)."""
    return moffat_fwhm_for_psfsize(float(psfsize), cfg.render.moffat_beta, cfg.survey.pixel_scale)


def render_arc(
    template: np.ndarray, lens: LensParams, src: SourcePlacement, mags: Mapping[str, float], fwhms: Mapping[str, float], cfg: Config, supersampling: int
) -> np.ndarray:
    """Noiseless arc float32 [B, S, S] (nanomaggies per pixel): :func:`render_unit` then :func:`bands_from_unit`."""
    return bands_from_unit(render_unit(template, lens, src, cfg, supersampling), mags, fwhms, cfg)


def psf_l2(fwhm: float, cfg: Config) -> float:
    """sum(k^2) of the band's unit-sum Moffat kernel k (for DR10 PSFSIZE ``fwhm`` arcsec): 1 / its effective area in pixels."""
    return _kernel_l2(kernel_fwhm(fwhm, cfg), cfg.survey.pixel_scale, cfg.render.moffat_beta, cfg.render.psf_flux_fraction, cfg.survey.stamp_size - 1)


@lru_cache(maxsize=512)
def _kernel_l2(fwhm: float, pixel_scale: float, beta: float, flux_fraction: float, max_radius: int) -> float:
    """sum(k^2) of :func:`moffat_kernel` (memoised like it: hosts share PSF sizes)."""
    return float(np.square(moffat_kernel(fwhm, pixel_scale, beta, flux_fraction, max_radius)).sum())


def unlensed_fraction_in_stamp(src_x: float, src_y: float, fwhm: float, cfg: Config) -> float:
    """Fraction of an unlensed source at (src_x, src_y) arcsec that the PSF keeps in the stamp.

    The source is treated as compact against the stamp margin (it lies within theta_E of the
    centre): the fraction is the sum of the band's kernel placed at the source position and
    clipped to the stamp.
    """
    s, pix = cfg.survey.stamp_size, cfg.survey.pixel_scale
    k = moffat_kernel(kernel_fwhm(fwhm, cfg), pix, cfg.render.moffat_beta, cfg.render.psf_flux_fraction, s - 1)
    r = k.shape[0] // 2
    col = int(round(src_x / pix + (s - 1) / 2.0))
    row = int(round(src_y / pix + (s - 1) / 2.0))
    r0, r1 = max(0, r - row), min(k.shape[0], r + (s - row))
    c0, c1 = max(0, r - col), min(k.shape[1], r + (s - col))
    return float(k[r0:r1, c0:c1].sum()) if r1 > r0 and c1 > c0 else 0.0
