"""The embedded default bank: GalSim-made clumpy star-forming galaxies (no download needed).

Each source is an exponential disk plus ``galsim.RandomKnots`` star-forming clumps (same
half-light radius, 20-60 % of the light by default) and, with ``bulge_probability``, a de
Vaucouleurs bulge (Sersic n=4 truncated at 10 HLR, B/T 0.1-0.4, HLR 0.4 x the disk's), sheared to an axis ratio q in [0.3, 1],
and convolved with a Gaussian of FWHM 0.11" so it carries the same PSF as the real HST
templates. Magnitudes and sizes follow COSMOS 25.2: dN/dm ~ 10^(0.33 m) up to ``bank.mag_max``,
and a log-normal size-magnitude relation with median HLR 0.6" at F814W = 20 and 0.25" at 25
(0.2 dex scatter), kept within ``bank.hlr_min``-``bank.hlr_max``. Photometric redshifts are
log-normal around z = 1 (0.35 in ln z). The bank has the COSMOS format, ``kind=procedural``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict

import numpy as np

from ..config import Config
from .clean import half_light_radius, negative_flux_fraction
from .cosmos import bank_attrs
from .select import assign_split_groups

log = logging.getLogger(__name__)

HST_LIKE_PSF_FWHM = 0.11  # arcsec, the median ACS F814W PSF FWHM of the GalSim COSMOS PSF images
COUNT_SLOPE = 0.33  # d log10 N / d mag of faint galaxy counts in I band
MAG_BRIGHT_LIMIT = 20.0  # procedural sources are no brighter than this (lensed sources are faint)


def _draw_magnitude(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Magnitude from dN/dm ~ 10^(COUNT_SLOPE m) on [lo, hi] (inverse CDF)."""
    a = COUNT_SLOPE * math.log(10.0)
    u = rng.random()
    return float(hi + math.log(u * (1.0 - math.exp(-a * (hi - lo))) + math.exp(-a * (hi - lo))) / a)


def _draw_hlr(rng: np.random.Generator, mag: float, lo: float, hi: float) -> float:
    """Log-normal COSMOS-like size at ``mag`` (arcsec), redrawn into [lo, hi]."""
    mu = math.log10(0.6) + (mag - 20.0) * math.log10(0.25 / 0.6) / 5.0
    for _ in range(100):
        h = 10.0 ** (mu + 0.2 * rng.standard_normal())
        if lo <= h <= hi:
            return float(h)
    return float(min(max(10.0**mu, lo), hi))


def build_procedural_bank(cfg: Config) -> tuple[np.ndarray, dict, dict]:
    """(images [N,S,S] float32 unit flux, meta columns, attrs) of the procedural bank."""
    import galsim

    b, p = cfg.bank, cfg.bank.procedural
    s, ps = b.stamp_size, b.pixel_scale
    key = int.from_bytes(hashlib.blake2b(b"procedural-bank", digest_size=4).digest(), "little")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(cfg.seed), key])))
    psf = galsim.Gaussian(fwhm=HST_LIKE_PSF_FWHM)
    mag_lo, mag_hi = max(b.mag_min, MAG_BRIGHT_LIMIT), b.mag_max
    if mag_lo > mag_hi:
        mag_lo = b.mag_min
    counts: OrderedDict[str, int] = OrderedDict(drawn=0, flux_outside=0, hlr=0, hlr_mismatch=0, kept=0)
    images, out = [], {k: [] for k in ("cosmos_index", "ident", "mag_f814w", "hlr_arcsec", "z_phot", "sersic_n", "q", "hlr_template_arcsec", "flux_outside", "snr", "neg_flux_frac")}
    while len(images) < p.n_sources:
        i = counts["drawn"]
        counts["drawn"] += 1
        if counts["drawn"] > 20 * p.n_sources + 100:
            from ..errors import BankError

            raise BankError(f"procedural bank: only {len(images)} of {p.n_sources} sources fit the cuts (counts {dict(counts)})", field="bank.procedural")
        mag = _draw_magnitude(rng, mag_lo, mag_hi)
        hlr = _draw_hlr(rng, mag, max(b.hlr_min, 1.5 * ps), b.hlr_max)
        q = float(rng.uniform(0.3, 1.0))
        beta = float(rng.uniform(0.0, 180.0))
        n_knots = int(rng.integers(p.n_knots_min, p.n_knots_max + 1))
        f_knots = float(rng.uniform(p.knot_flux_fraction_min, p.knot_flux_fraction_max)) if n_knots else 0.0
        bt = float(rng.uniform(0.1, 0.4)) if rng.random() < p.bulge_probability else 0.0
        z = float(np.clip(math.exp(math.log(1.0) + 0.35 * rng.standard_normal()), max(b.zphot_min, 0.05), b.zphot_max))
        knot_seed = int(rng.integers(1, 2**31 - 1))
        parts = [galsim.Exponential(half_light_radius=hlr, flux=1.0 - f_knots - bt)]
        if n_knots:
            parts.append(galsim.RandomKnots(npoints=n_knots, half_light_radius=hlr, flux=f_knots, rng=galsim.BaseDeviate(knot_seed)))
        if bt > 0:
            # a de Vaucouleurs bulge truncated at 10 HLR: the untruncated n=4 wings force huge FFTs
            parts.append(galsim.Sersic(4.0, half_light_radius=0.4 * hlr, flux=bt, trunc=4.0 * hlr))
        gal = galsim.Add(parts).shear(q=q, beta=beta * galsim.degrees)
        # knots follow the disk's profile on average, so the intrinsic HLR is that of the smooth model
        smooth = galsim.Add([galsim.Exponential(half_light_radius=hlr, flux=1.0 - bt)] + parts[2 if n_knots else 1:])
        # analytic in real space: "no_pixel" samples it directly instead of a huge pixel-convolved FFT
        intrinsic = smooth.shear(q=q, beta=beta * galsim.degrees).drawImage(nx=s, ny=s, scale=ps, method="no_pixel").array
        img = galsim.Convolve(gal, psf).drawImage(nx=s, ny=s, scale=ps, dtype=np.float64).array
        f_out = max(0.0, 1.0 - float(img.sum()))
        if f_out > b.max_flux_outside:
            counts["flux_outside"] += 1
            continue
        hlr_true = half_light_radius(intrinsic, ps, subsample=2)
        if not b.hlr_min <= hlr_true <= b.hlr_max:
            counts["hlr"] += 1
            continue
        template = (img / img.sum()).astype(np.float32)
        template /= np.float32(template.sum(dtype=np.float64))
        hlr_t = half_light_radius(template, ps, subsample=2)
        if not abs(hlr_t / hlr_true - 1.0) <= b.max_hlr_mismatch:  # clumps placed far from the disk's profile
            counts["hlr_mismatch"] += 1
            continue
        images.append(template)
        for k, v in (("cosmos_index", i), ("ident", f"proc-{i:06d}"), ("mag_f814w", mag), ("hlr_arcsec", hlr_true), ("z_phot", z),
                     ("sersic_n", 1.0 + 3.0 * bt), ("q", q), ("hlr_template_arcsec", hlr_t),
                     ("flux_outside", f_out), ("snr", np.inf), ("neg_flux_frac", negative_flux_fraction(template))):
            out[k].append(v)
    counts["kept"] = len(images)
    log.info("procedural bank: %s", dict(counts))
    meta = {k: np.asarray(v) for k, v in out.items()}
    meta["pixel_scale"] = np.full(len(images), ps, dtype=np.float32)
    meta["split_group"] = assign_split_groups(meta["ident"], cfg.tasks.split_fractions, b.split_salt)
    attrs = bank_attrs(cfg, kind="procedural", counts=counts)
    attrs.update({
        "catalog_version": "procedural (GalSim Exponential + RandomKnots + DeVaucouleurs)",
        "sersic_n_meaning": "1 + 3 B/T (a proxy: disk n=1, bulge n=4)",
        "hlr_source": "measured on the PSF-free galaxy (elliptical apertures)",
        "magnitude_source": f"drawn: dN/dm ~ 10^({COUNT_SLOPE} m) on [{mag_lo}, {mag_hi}]",
    })
    return np.stack(images), meta, attrs
