"""The draws of one injection and the acceptance loop: the lens once, the source until it passes.

Streams (``ids.task_rng(seed, task_id, stream)``): ``"lens"`` draws the host's lens once (the
uniform theta_E of ``theta_e_policy: uniform``, the mass ellipticity, the shear, the centre offset,
the sigma_v scatter, always in that order); ``"source"`` draws each try in turn (template behind
the lens, rotation, flip, colours at its redshift, dmag, position), so a row is a function of
(task, cutout, bank, config) and never of the partitioning. The host and the lens are never
redrawn: only the source is (Holloway et al. 2023 and slsim select lenses the same way, by
redrawing sources behind a fixed deflector).

Per try, cheapest first (config section ``accept``; docs/PHYSICS.md):

1. a template with ``src_z >= lens_z + lens.min_dz`` (sources/select.py); its theta_E from the
   host's sigma_v (physics/population.py), rejected or clipped outside the configured range;
2. resolvability theta_E / sqrt(r_s^2 + (FWHM_r/2)^2): no render needed;
3. the unconvolved lensed image: total magnification, and an exact upper bound on the region SNR
   (physics/acceptance.py) that skips the PSF convolutions when the SNR cut cannot pass;
4. the arc in every band: region SNR in g and r (variance sky + host light + arc), contrast.

The first try that passes every enabled criterion is kept (``accepted = true``); otherwise the
last try is kept, fully measured, with ``accepted = false`` and the reason it failed (a try whose
theta_E fell outside the range is kept at the clipped theta_E, ``theta_e_status = out_of_range``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Config
from ..ids import task_rng
from ..sources.bank import SourceBank
from ..sources.colours import band_magnitudes, draw_colours, nanomaggies_to_mag
from ..sources.select import choose_source_behind, draw_orientation
from .acceptance import (
    Criteria,
    band_region_snr,
    contrast,
    failure,
    resolvability,
    snr_upper_bound,
)
from .arc import bands_from_unit, psf_l2, render_unit
from .params import LensParams, draw_source_position, f32, lrg_offset_arcsec
from .population import cosmology, host_sigma_v, lens_redshift, mass_ellipticity, theta_e_sis
from .render import SourcePlacement


@dataclass(frozen=True)
class HostLens:
    """The lens of one task, drawn once: redshift, sigma_v (km/s), SIE shape, shear, centre (arcsec)."""

    lens_z: float | None
    lens_z_kind: str | None
    sigma_v: float | None
    sigma_v_kind: str | None
    e1: float
    e2: float
    e_kind: str
    g1: float
    g2: float
    x: float
    y: float
    theta_e_uniform: float
    mag_r: float | None = None  # the host's r magnitude (AB), for the dmag brightness mode


@dataclass
class Trial:
    """One source draw and what it measured (arc None: not rendered, a cheaper criterion failed)."""

    index: int | None = None
    src_z: float | None = None
    lens: LensParams | None = None
    theta_e_status: str | None = None
    src: SourcePlacement | None = None
    mags: dict = field(default_factory=dict)
    src_dmag: float | None = None
    source_hlr: float | None = None
    unit: np.ndarray | None = None
    arc: np.ndarray | None = None
    criteria: Criteria = field(default_factory=Criteria)
    reason: str | None = None


def draw_host_lens(task: Mapping[str, Any], cfg: Config) -> HostLens:
    """The task's lens from its ``"lens"`` stream (values float32-rounded, as the row keeps them)."""
    lc, s, pix = cfg.lens, cfg.survey.stamp_size, cfg.survey.pixel_scale
    rng = task_rng(cfg.seed, int(task["task_id"]), "lens")
    theta_u = rng.uniform(lc.theta_e_min, lc.theta_e_max)
    e1, e2, e_kind = mass_ellipticity(task, lc, rng)
    g = rng.uniform(0.0, lc.shear_max)
    phi_g = rng.uniform(0.0, np.pi)
    off = rng.uniform(-1.0, 1.0, size=2) * lc.center_offset_max * pix
    cx, cy = lrg_offset_arcsec(task.get("bx"), task.get("by"), s, pix)
    z, z_kind = lens_redshift(task)
    sigma, sigma_kind = host_sigma_v(task, z, lc, rng) if z is not None else (None, None)
    return HostLens(
        lens_z=None if z is None else f32(z), lens_z_kind=z_kind,
        sigma_v=None if sigma is None else f32(sigma), sigma_v_kind=sigma_kind,
        e1=f32(e1), e2=f32(e2), e_kind=e_kind,
        g1=f32(g * np.cos(2 * phi_g)), g2=f32(g * np.sin(2 * phi_g)),
        x=f32(cx + off[0]), y=f32(cy + off[1]), theta_e_uniform=f32(theta_u), mag_r=host_mag_r(task),
    )


def source_scale(bank_z: float, src_z: float, cfg: Config) -> float:
    """Angular-size factor of a template moved from its catalogue ``bank_z`` to ``src_z``:
    D_A(bank_z) / D_A(src_z) under ``redshift_policy: rescale`` (paltas ``z_scale_factor``), else 1."""
    if cfg.source.redshift_policy != "rescale" or not (bank_z > 0 and src_z > 0):
        return 1.0
    c = cosmology(cfg.lens.cosmology)
    return float(c.angular_diameter_distance(bank_z).value / c.angular_diameter_distance(src_z).value)


def theta_e_for(host: HostLens, src_z: float, cfg: Config) -> tuple[float | None, str]:
    """(theta_E arcsec, status): 'uniform' | 'host' | 'clipped', or (None, 'out_of_range') when rejected."""
    lc = cfg.lens
    if lc.theta_e_policy == "uniform":
        return host.theta_e_uniform, "uniform"
    theta = theta_e_sis(host.sigma_v, host.lens_z, src_z, lc.cosmology)
    if lc.theta_e_min <= theta <= lc.theta_e_max:
        return f32(theta), "host"
    if lc.theta_e_out_of_range == "clip":
        return f32(min(max(theta, lc.theta_e_min), lc.theta_e_max)), "clipped"
    return None, f"theta_E {theta:.3f} arcsec outside [{lc.theta_e_min}, {lc.theta_e_max}]"


def _source(t: Trial, task: Mapping[str, Any], host: HostLens, bank: SourceBank, cfg: Config, rng: np.random.Generator) -> None:
    """Fill ``t`` with one source draw (fixed number of draws from ``rng`` up to the position)."""
    z_min = -math.inf if host.lens_z is None else host.lens_z + cfg.lens.min_dz
    index = choose_source_behind(rng, bank, str(task["split"]), z_min)
    rotation, flip = draw_orientation(rng)
    bank_z = float(bank.meta["z_phot"][index]) if index is not None else None
    src_z = bank_z
    if index is not None and cfg.source.redshift_policy == "rescale":
        src_z = max(cfg.source.rescale_target_z, z_min)
    colours = draw_colours(rng, cfg.source, src_z)
    dmag_draw = rng.uniform(cfg.source.dmag_min, cfg.source.dmag_max)
    if index is None:
        t.reason = f"no source in the bank's '{task['split']}' group with z_phot >= lens_z + min_dz = {z_min:.3f}"
        return
    t.index, t.src_z = index, f32(src_z)
    scale = source_scale(bank_z, t.src_z, cfg)
    theta, status = theta_e_for(host, t.src_z, cfg)
    t.theta_e_status = status if theta is not None else "out_of_range"
    if theta is None:  # this try fails; if it is the last, the kept row shows it at the clipped theta_E
        t.reason = status
        lc = cfg.lens
        theta = f32(min(max(theta_e_sis(host.sigma_v, host.lens_z, t.src_z, lc.cosmology), lc.theta_e_min), lc.theta_e_max))
    lens = LensParams(theta_e=theta, e1=host.e1, e2=host.e2, g1=host.g1, g2=host.g2, x=host.x, y=host.y)
    src_x, src_y = draw_source_position(rng, lens, cfg.lens)
    t.lens = lens
    t.src = SourcePlacement(src_x, src_y, f32(rotation), bool(flip), float(bank.pixel_scale) * scale)
    hlr = bank.meta["hlr_arcsec"][index] if "hlr_arcsec" in bank.meta else None
    t.source_hlr = None if hlr is None else f32(float(hlr) * scale)
    t.mags, t.src_dmag = _magnitudes(task, bank, index, colours, dmag_draw, scale, cfg, host.mag_r)


def host_mag_r(task: Mapping[str, Any]) -> float | None:
    """The host's r magnitude (AB) from the task's ``flux_r`` (nanomaggies; None unless > 0)."""
    flux_r = task.get("flux_r")
    return float(nanomaggies_to_mag(float(flux_r))) if flux_r is not None and float(flux_r) > 0 else None


def _magnitudes(task: Mapping[str, Any], bank: SourceBank, index: int, colours: dict, dmag_draw: float, scale: float, cfg: Config,
                host_mag: float | None) -> tuple[dict, float | None]:
    """Observed AB magnitude per band (after the host position's Galactic extinction), and src_dmag.

    The bank's own g/r/z photometry (``mag_g``, ``mag_r``, ``mag_z`` meta columns) when it has them,
    else F814W + the colour model. ``rescale`` keeps the surface brightness (paltas): the flux
    scales with the area, scale^2. DR10 fluxes are not extinction-corrected, so each band's flux
    is multiplied by the task's ``mw_transmission_<band>`` (1 when absent). ``host_mag``:
    :func:`host_mag_r` of the task (once per task, not per try).
    """
    bands = cfg.survey.bands
    dm_scale = -5.0 * math.log10(scale) if scale != 1.0 else 0.0
    if cfg.source.brightness_mode == "dmag":
        mags = band_magnitudes(host_mag + dmag_draw, colours, bands)
        src_dmag = dmag_draw
    else:
        own = {b: bank.meta.get(f"mag_{b}") for b in bands}
        if all(v is not None and math.isfinite(float(v[index])) for v in own.values()):
            mags = {b: float(own[b][index]) + cfg.source.mag_shift + dm_scale for b in bands}
        else:
            mag_r = float(bank.meta["mag_f814w"][index]) + cfg.source.mag_shift + colours["r_minus_i"] + dm_scale
            mags = band_magnitudes(mag_r, colours, bands)
        src_dmag = None if host_mag is None else mags.get("r", mags[bands[0]]) - host_mag
    for b in bands:
        trans = task.get(f"mw_transmission_{b}")
        if trans is not None and math.isfinite(float(trans)) and float(trans) > 0:
            mags[b] -= 2.5 * math.log10(float(trans))
    return {b: f32(m) for b, m in mags.items()}, None if src_dmag is None else f32(src_dmag)


_TEMPLATE_SUMS: dict[int, tuple[weakref.ref, dict[int, float]]] = {}


def template_sum(bank: SourceBank, index: int) -> float:
    """float64 sum of bank template ``index`` (its flux on its own grid, ~1), memoised per bank
    object: every try and the row's magnification use it."""
    hit = _TEMPLATE_SUMS.get(id(bank))
    if hit is None or hit[0]() is not bank:
        if len(_TEMPLATE_SUMS) > 8:
            _TEMPLATE_SUMS.clear()
        hit = _TEMPLATE_SUMS[id(bank)] = (weakref.ref(bank), {})
    sums = hit[1]
    value = sums.get(int(index))
    if value is None:
        value = sums[int(index)] = float(bank.template(index).sum(dtype=np.float64))
    return value


def bound_terms(invvar: np.ndarray, fwhms: Mapping[str, float], cfg: Config) -> dict[str, tuple[float, float]]:
    """Per SNR band (g, r): (psf_l2 of its kernel, max invvar (1/nanomaggy^2)) for :func:`snr_upper_bound`,
    once per task: they depend on the host, not on the try."""
    bands = cfg.survey.bands
    return {b: (psf_l2(fwhms[b], cfg), float(invvar[bands.index(b)].max())) for b in "gr" if b in bands}


def measure(t: Trial, template: np.ndarray, host_image: np.ndarray, invvar: np.ndarray, good: np.ndarray, fwhms: Mapping[str, float],
            sky: np.ndarray, cfg: Config, full: bool, unlensed_sum: float | None = None, bounds: Mapping[str, tuple[float, float]] | None = None) -> None:
    """Render and measure ``t`` cheapest first; ``full`` measures everything even after a failure.
    ``unlensed_sum`` (the template's float64 sum) and ``bounds`` (:func:`bound_terms`) are
    computed here when not given."""
    bands, ac = cfg.survey.bands, cfg.accept
    kr = bands.index("r") if "r" in bands else 0
    c = {"resolvability": resolvability(t.lens.theta_e, t.source_hlr or 0.0, float(fwhms[bands[kr]]))}
    t.criteria = Criteria(**c)
    if not full and failure(t.criteria, ac, partial=True):
        t.reason = failure(t.criteria, ac, partial=True)
        return
    t.unit = render_unit(template, t.lens, t.src, cfg, cfg.render.supersampling)
    unit_sum = float(t.unit.sum(dtype=np.float64))
    c["magnification"] = unit_sum / (float(template.sum(dtype=np.float64)) if unlensed_sum is None else unlensed_sum)
    t.criteria = Criteria(**c)
    snr_bands = [b for b in "gr" if b in bands]
    if not full and failure(t.criteria, ac, partial=True):
        t.reason = failure(t.criteria, ac, partial=True)
        return
    if not full and ac.min_snr_region > 0 and unit_sum > 0:
        l2 = float(np.square(t.unit, dtype=np.float64).sum()) / unit_sum**2
        bounds = bound_terms(invvar, fwhms, cfg) if bounds is None else bounds
        bound = max(
            snr_upper_bound(unit_sum * 10 ** ((22.5 - t.mags[b]) / 2.5), l2, *bounds[b])
            for b in snr_bands
        ) if snr_bands else math.inf
        if bound < ac.min_snr_region:
            t.reason = f"region SNR <= {bound:.2f} (upper bound) < {ac.min_snr_region}"
            return
    t.arc = bands_from_unit(t.unit, t.mags, fwhms, cfg)
    region = {}
    for b in snr_bands:
        k = bands.index(b)
        c[f"snr_region_{b}"], region[b] = band_region_snr(t.arc[k], host_image[k], invvar[k], float(sky[k]), good)
    if snr_bands:
        kc = snr_bands[0]
        c["contrast"] = contrast(t.arc[bands.index(kc)], host_image[bands.index(kc)], region[kc])
    t.criteria = Criteria(**c)
    t.reason = failure(t.criteria, ac)


def run_trials(task: Mapping[str, Any], host_image: np.ndarray, invvar: np.ndarray, good: np.ndarray, bank: SourceBank,
               fwhms: Mapping[str, float], sky: np.ndarray, cfg: Config) -> tuple[HostLens, Trial, int, bool]:
    """(the lens, the kept try, n_tries, accepted) for one injection task (see module doc).

    host_image, invvar: the cutout [B, S, S] (nanomaggies, 1/nanomaggy^2); good: boolean [S, S]
    good-pixel mask (invvar > 0 in every band is checked per band by the variance; bad maskbits
    are the caller's); fwhms: PSF FWHM per band (arcsec); sky: sky level per band (nanomaggies).
    """
    host = draw_host_lens(task, cfg)
    rng = task_rng(cfg.seed, int(task["task_id"]), "source")
    t, n = Trial(), 0
    bounds = None  # bound_terms, once per task, at the first try that reaches a render
    if cfg.lens.theta_e_policy == "host" and (host.lens_z is None or host.sigma_v is None):
        t.reason = "no lens redshift (z_spec / z_phot) or no host flux_r for sigma_v: theta_E cannot follow the host"
        return host, t, 0, False
    for n in range(1, cfg.accept.max_tries + 1):
        t = Trial()
        _source(t, task, host, bank, cfg, rng)
        if t.reason is not None and t.index is None:
            return host, t, n, False  # no source behind this lens: redrawing cannot help
        if t.reason is not None:
            continue
        last = n == cfg.accept.max_tries
        bounds = bound_terms(invvar, fwhms, cfg) if bounds is None else bounds
        measure(t, bank.template(t.index), host_image, invvar, good, fwhms, sky, cfg, last, template_sum(bank, t.index), bounds)
        if t.reason is None:
            return host, t, n, True
    if t.lens is not None and t.arc is None:
        reason = t.reason
        measure(t, bank.template(t.index), host_image, invvar, good, fwhms, sky, cfg, True, template_sum(bank, t.index), bounds)
        t.reason = reason if t.theta_e_status == "out_of_range" else t.reason
    return host, t, n, False
