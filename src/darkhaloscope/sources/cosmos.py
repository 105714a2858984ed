"""Build the source bank from a GalSim real-galaxy catalog (COSMOS 25.2 or any RealGalaxyCatalog).

Steps (DESIGN 3.2, issue 3):

1. Read the catalog with ``galsim.RealGalaxyCatalog`` and, when its parametric-fit table
   (``<name>_fits.fits``) is present, ``galsim.COSMOSCatalog`` with GalSim's
   ``exclusion_level`` (default ``marginal``, which also needs ``<name>_selection.fits``).
2. The project's catalog cuts: HLR (Sersic fit, arcsec), F814W magnitude, photo-z. Without a
   parametric-fit table, HLR and magnitude are measured on the cleaned image instead.
3. Per galaxy, in a salted-hash order (so ``max_sources`` keeps a random subsample): clean the
   HST stamp (:mod:`.clean`: sky subtraction, segmentation, light smoothing), S/N cut, draw it
   with GalSim at 0.03"/pixel, centred, into S x S; reject on flux outside the stamp, on a
   template HLR more than ``max_hlr_mismatch`` from the catalog HLR, and on negative flux.
4. Unit total flux; ``split_group`` from the salted hash of ``ident``.

PSF: by default the native HST PSF is kept (GalSim's ``RealGalaxy.original_gal``, no
deconvolution). GalSim's rule for re-observing real galaxies is that the final PSF must be at
least as large as the original one; here the final PSF is ground-based seeing (FWHM >= 0.8"),
and (0.8^2 + 0.11^2)^0.5 = 0.8075", so the HST PSF widens it by < 1 %, while deconvolving would
amplify the HST noise. ``bank.psf_handling = gaussian`` instead deconvolves the HST PSF and
reconvolves with a Gaussian of ``bank.target_psf_fwhm`` (GalSim's ``RealGalaxy`` recipe).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .._version import code_version
from ..config import Config, config_hash, config_to_dict
from ..errors import BankError
from ..ids import hash_unit
from .clean import (
    CleanParams,
    clean_stamp,
    half_light_radius,
    moments_shape,
    negative_flux_fraction,
)
from .select import assign_split_groups

log = logging.getLogger(__name__)

COUNT_KEYS = (
    "catalog", "galsim_exclusion", "hlr", "mag", "z_phot", "no_detection", "snr",
    "flux_outside", "hlr_mismatch", "negative_flux", "max_sources", "kept",
)


def _sha16(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def open_catalog(cosmos_dir: str | Path, catalog_file: str, exclusion_level: str) -> tuple[Any, Any, np.ndarray, str]:
    """(RealGalaxyCatalog, COSMOSCatalog or None, catalog rows kept by GalSim's exclusion, note).

    Raises :class:`BankError` naming the file when the catalog, or a file the exclusion level
    needs, is missing.
    """
    import galsim

    cosmos_dir = Path(cosmos_dir)
    path = cosmos_dir / catalog_file
    if not path.is_file():
        raise BankError(
            f"COSMOS catalog not found: {path} (download it with `galsim_download_cosmos -s 25.2` "
            "and pass its folder as --cosmos-dir)", path=str(path))
    try:
        rgc = galsim.RealGalaxyCatalog(catalog_file, dir=str(cosmos_dir))
        n = rgc.nobjects
        _ = rgc.gal_file_name, rgc.psf_file_name, rgc.variance
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise BankError(f"{path} is not a GalSim RealGalaxyCatalog: {exc}", path=str(path)) from None
    fits_path = path.with_name(path.name.replace(".fits", "_fits.fits"))
    if not fits_path.is_file():
        note = "none: no parametric-fit table (" + fits_path.name + "); HLR and magnitude measured on the image"
        if exclusion_level != "none":
            log.warning("GalSim exclusion level %r not applicable to %s: %s", exclusion_level, path.name, note)
        return rgc, None, np.arange(n), note
    sel = path.with_name(path.name.replace(".fits", "_selection.fits"))
    if exclusion_level in ("bad_stamp", "marginal") and not sel.is_file():
        raise BankError(
            f"GalSim exclusion level '{exclusion_level}' needs {sel.name} next to {path.name} "
            "(or set bank.exclusion_level to bad_fits/none)", path=str(sel), field="bank.exclusion_level")
    try:
        cc = galsim.COSMOSCatalog(file_name=catalog_file, dir=str(cosmos_dir), use_real=True, exclusion_level=exclusion_level)
    except (OSError, KeyError, ValueError) as exc:
        raise BankError(f"GalSim cannot read {path.name} with its fit/selection tables: {exc}", path=str(path)) from None
    ids = np.array([str(i) for i in cc.param_cat["IDENT"]])
    if len(ids) != n or not np.array_equal(ids, np.array(rgc.ident)):
        raise BankError(f"parametric-fit table {fits_path.name} is not row-aligned with {path.name}", path=str(fits_path))
    return rgc, cc, np.asarray(cc.orig_index), f"{exclusion_level} (GalSim COSMOSCatalog)"


def _check_files(rgc: Any, rows: np.ndarray, catalog: Path) -> None:
    """Clear error when the image / PSF / noise files the rows need are absent."""
    for kind, names in (("galaxy image", rgc.gal_file_name), ("PSF image", rgc.psf_file_name), ("noise correlation", rgc.noise_file_name)):
        if names is None:
            continue
        missing = sorted({Path(names[i].strip()).name for i in rows if not Path(names[i].strip()).is_file()})
        if missing:
            raise BankError(
                f"catalog {catalog.name} lists {kind} files that are not in {catalog.parent}: {missing[:5]}"
                + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
                + "; a bank needs the full download (`galsim_download_cosmos -s 25.2`)",
                path=str(catalog.parent / missing[0]), field=kind)


def _draw_template(rgc: Any, row: int, clean_image: np.ndarray, centroid: tuple[float, float], cfg: Config) -> tuple[np.ndarray, float]:
    """Draw the cleaned galaxy with GalSim into S x S, centroid at the stamp centre.

    Returns (image [S,S] float64 in the stamp's flux unit, fraction of the flux outside)."""
    import galsim

    b = cfg.bank
    ps = float(rgc.pixel_scale[row])
    rg = galsim.RealGalaxy.makeFromImage(galsim.Image(np.ascontiguousarray(clean_image), scale=ps), rgc.getPSF(row), rgc.getNoise(row))
    ny, nx = clean_image.shape
    # InterpolatedImage is centred on the input's true centre; shift the light centroid onto the output's
    offset = (-(centroid[1] - (nx - 1) / 2.0) * ps / b.pixel_scale, -(centroid[0] - (ny - 1) / 2.0) * ps / b.pixel_scale)
    if b.psf_handling == "native":
        obj, method = rg.original_gal, "no_pixel"  # HST image already includes its PSF and pixel
    else:
        obj, method = galsim.Convolve(rg, galsim.Gaussian(fwhm=b.target_psf_fwhm)), "auto"
    img = obj.drawImage(nx=b.stamp_size, ny=b.stamp_size, scale=b.pixel_scale, method=method, offset=offset, dtype=np.float64)
    total = float(clean_image.sum())
    return img.array, max(0.0, 1.0 - float(img.array.sum()) / total) if total > 0 else 1.0


def _model_flux_outside(cc: Any, row: int, stamp_size: int, pixel_scale: float) -> float:
    """Fraction of the parametric (Sersic / bulge+disk) model's flux outside S x S."""
    pos = int(np.searchsorted(cc.orig_index, row))
    model = cc.makeGalaxy(pos, gal_type="parametric")
    img = model.drawImage(nx=stamp_size, ny=stamp_size, scale=pixel_scale)
    return max(0.0, float(1.0 - img.array.sum() / model.flux))


def build_cosmos_bank(cfg: Config, cosmos_dir: str | Path, catalog_file: str | None = None) -> tuple[np.ndarray, dict, dict]:
    """(images [N,S,S] float32 unit flux, meta columns, attrs) of a bank built from a catalog."""
    b = cfg.bank
    catalog_file = catalog_file or b.catalog_file
    cat_path = Path(cosmos_dir) / catalog_file
    rgc, cc, kept, exclusion_note = open_catalog(cosmos_dir, catalog_file, b.exclusion_level)
    n_cat = rgc.nobjects
    counts: OrderedDict[str, int] = OrderedDict((k, 0) for k in COUNT_KEYS)
    counts["catalog"] = n_cat
    counts["galsim_exclusion"] = n_cat - len(kept)
    rows = np.asarray(kept, dtype=np.int64)
    idents = np.array([str(i) for i in rgc.ident])
    if cc is not None:
        pc = cc.param_cat
        hlr_cat, zphot = pc["hlr"][:, 0].astype(float), pc["zphot"].astype(float)
        sersic_n, q_cat = pc["sersicfit"][:, 2].astype(float), pc["sersicfit"][:, 3].astype(float)
        mag = np.asarray(rgc.mag, dtype=float)
        for key, ok in (
            ("hlr", (hlr_cat >= b.hlr_min) & (hlr_cat <= b.hlr_max)),
            ("mag", (mag >= b.mag_min) & (mag <= b.mag_max)),
            ("z_phot", (zphot >= b.zphot_min) & (zphot <= b.zphot_max)),
        ):
            counts[key] = int((~ok[rows]).sum())
            rows = rows[ok[rows]]
    else:
        hlr_cat = zphot = sersic_n = q_cat = mag = None
    log.info("%s: %d rows, %d after GalSim exclusion (%s), %d after catalog cuts", cat_path.name, n_cat, len(kept), exclusion_note, len(rows))
    if len(rows) == 0:
        raise BankError(f"no galaxy of {cat_path.name} passes the catalog cuts (counts {dict(counts)})", path=str(cat_path))
    _check_files(rgc, rows, cat_path)
    order = sorted(rows.tolist(), key=lambda r: hash_unit(idents[r], b.split_salt + "/order"))
    params = CleanParams(detect_smooth_pix=b.detect_smooth_pix, detect_nsigma=b.detect_nsigma, grow_pix=b.grow_pix, denoise_sigma_pix=b.denoise_sigma_pix)
    zp = float(rgc.getBandpass().zeropoint)
    images, out = [], {k: [] for k in ("cosmos_index", "ident", "mag_f814w", "hlr_arcsec", "z_phot", "sersic_n", "q", "hlr_template_arcsec", "flux_outside", "snr", "neg_flux_frac")}
    psf_fwhm = []
    for done, row in enumerate(order):
        if b.max_sources and len(images) >= b.max_sources:
            counts["max_sources"] = len(order) - done
            break
        try:
            stamp = rgc.getGalImage(row).array
            noise_im, _, var = rgc.getNoiseProperties(row)
        except OSError as exc:
            raise BankError(f"cannot read galaxy {idents[row]} (row {row}) of {cat_path.name}: {exc}", path=str(cat_path), row=int(row)) from None
        xi = np.array([[var]]) if noise_im is None else noise_im.array / noise_im.array.max() * var
        cl = clean_stamp(stamp, xi, params)
        if cl.flux <= 0:
            counts["no_detection"] += 1
            continue
        ps = float(rgc.pixel_scale[row])
        if cc is None:  # no parametric fits: measure on the image
            g_hlr = half_light_radius(cl.image, ps)
            g_mag = zp - 2.5 * math.log10(cl.flux)
            if not b.hlr_min <= g_hlr <= b.hlr_max:
                counts["hlr"] += 1
                continue
            if not b.mag_min <= g_mag <= b.mag_max:
                counts["mag"] += 1
                continue
            g_z, g_n, g_q = float("nan"), float("nan"), moments_shape(cl.image)[2]
        else:
            g_hlr, g_mag, g_z, g_n, g_q = hlr_cat[row], mag[row], zphot[row], sersic_n[row], q_cat[row]
        if cl.snr < b.min_snr:
            counts["snr"] += 1
            continue
        drawn, f_out = _draw_template(rgc, row, cl.image, cl.centroid, cfg)
        if cc is not None:
            f_out = max(f_out, _model_flux_outside(cc, row, b.stamp_size, b.pixel_scale))
        if f_out > b.max_flux_outside:
            counts["flux_outside"] += 1
            continue
        tot = drawn.sum()
        template = (drawn / tot).astype(np.float32)
        template /= np.float32(template.sum(dtype=np.float64))  # unit flux after the float32 cast
        t_hlr = half_light_radius(template, b.pixel_scale)
        if not abs(t_hlr / g_hlr - 1.0) <= b.max_hlr_mismatch:
            counts["hlr_mismatch"] += 1
            continue
        neg = negative_flux_fraction(template)
        if neg > b.max_negative_fraction:
            counts["negative_flux"] += 1
            continue
        images.append(template)
        for key, val in (("cosmos_index", row), ("ident", idents[row]), ("mag_f814w", g_mag), ("hlr_arcsec", g_hlr), ("z_phot", g_z),
                         ("sersic_n", g_n), ("q", g_q), ("hlr_template_arcsec", t_hlr), ("flux_outside", f_out), ("snr", cl.snr), ("neg_flux_frac", neg)):
            out[key].append(val)
        if len(psf_fwhm) < 50:
            psf_fwhm.append(float(rgc.getPSF(row).calculateFWHM()))
    counts["kept"] = len(images)
    for key, value in counts.items():
        log.info("bank cut %-16s %d", key, value)
    if not images:
        raise BankError(f"no galaxy of {cat_path.name} survives the bank cuts (counts {dict(counts)})", path=str(cat_path))
    # bank order: by catalog row, so the file does not depend on the processing order
    perm = np.argsort(out["cosmos_index"], kind="stable")
    meta = {k: np.asarray(v)[perm] for k, v in out.items()}
    meta["pixel_scale"] = np.full(len(perm), b.pixel_scale, dtype=np.float32)
    meta["split_group"] = assign_split_groups(meta["ident"], cfg.tasks.split_fractions, b.split_salt)
    attrs = bank_attrs(cfg, kind="cosmos", counts=counts)
    attrs.update({
        "catalog_file": cat_path.name,
        "catalog_version": f"{cat_path.name} ({n_cat} rows, sha256 {_sha16(cat_path)[:16]}, GalSim sample {getattr(cc, 'use_sample', None)})",
        "exclusion": exclusion_note,
        "hst_psf_fwhm_median_arcsec": float(np.median(psf_fwhm)) if psf_fwhm else float("nan"),
        "magnitude_source": "catalog MAG (F814W MAG_AUTO)" if cc is not None else "measured on the cleaned image (GalSim bandpass zeropoint)",
        "hlr_source": "parametric Sersic fit hlr[0]" if cc is not None else "measured on the cleaned image (elliptical apertures)",
    })
    return np.stack(images)[perm], meta, attrs


def bank_attrs(cfg: Config, kind: str, counts: dict) -> dict:
    """Attributes every bank carries: kind, cuts, counts, versions and conventions."""
    b = cfg.bank
    cuts = {k: v for k, v in config_to_dict(b).items() if k not in ("procedural", "kind", "catalog_file")}
    return {
        "kind": kind,
        "cuts": cuts,
        "counts": dict(counts),
        "code_version": code_version(),
        "config_hash": config_hash(cfg),
        "pixel_scale": float(b.pixel_scale),
        "stamp_size": int(b.stamp_size),
        "split_fractions": dict(cfg.tasks.split_fractions),
        "split_salt": b.split_salt,
        "psf_handling": b.psf_handling if kind == "cosmos" else "procedural: Gaussian HST-like PSF (FWHM 0.11 arcsec)",
        "noise_treatment": (
            "sigma-clipped sky from outside the segment; segmentation at "
            f"{b.detect_nsigma} sigma of a {b.detect_smooth_pix}-pixel Gaussian filter (correlated-noise sigma "
            f"from the noise correlation function), grown {b.grow_pix} pixels; zero outside; Gaussian smoothing "
            f"{b.denoise_sigma_pix} pixel inside; cuts S/N >= {b.min_snr}, |HLR/catalog - 1| <= {b.max_hlr_mismatch}, "
            f"negative flux <= {b.max_negative_fraction}" if kind == "cosmos" else "noise-free (procedural)"
        ),
        "centre": "light centroid at array position ((S-1)/2, (S-1)/2), 0-indexed; x = axis 1",
        "units": "unit total flux per template; pixel_scale arcsec/pixel",
    }
