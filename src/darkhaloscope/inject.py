"""The heart: one task + its cutout + the source bank + the config -> one stamp row.

``inject`` is a pure function (no Spark, no I/O): every random draw comes from
``task_rng(cfg.seed, task_id, stream)`` with the named streams ``"lens"`` (the host's lens,
once), ``"source"`` (each try's template, orientation, colours, dmag, position) and ``"noise"``
(arc shot noise), so a row is a function of (task, cutout, bank, config) only. The path of one
injection:

    physics.trials.run_trials                    the lens from the host (physics.population), then
                                                 sources behind it until the ``accept`` criteria
                                                 pass (physics.acceptance) or max_tries
    physics.arc (fastrender + psf)               lensed unit-flux image, per-band Moffat x flux
    physics.fastrow.noise_pixels / add_arc       the arc's own shot noise, added where there is data
    physics.fastrow                              SNRs on good pixels, lensed HLR, magnification
                                                 (compiled equivalents of physics.noise / physics.metrics)

No encoding here: the row carries raw arrays, and dataset.rows.encode_row makes stamp_npz / arc_npz.

Controls (and the real-stamp roles impostor, known_lens) pass through with the same cutout
handling; the painted negatives (unlensed, ring) are made by ``roles.paint_negative``. A stamp that cannot be made keeps its
row with ``cutout_ok = False`` and a reason; numeric columns are null, never NaN.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._version import code_version
from .config import PAINTED_ROLES, ROLES, Config, config_hash
from .dataset.schema import COLUMN_NAMES
from .errors import BankError, PhysicsError
from .ids import task_rng
from .physics import fastrow
from .physics.arc import render_arc, unlensed_fraction_in_stamp
from .physics.noise import ARC_NOISE_MIN_SKY_FRACTION, sky_nanomaggies_per_pixel
from .physics.params import LensParams, f32
from .physics.params import (
    finite_or_none as _num,  # one definition (roles.py imports _num from here)
)
from .physics.render import SourcePlacement
from .physics.trials import run_trials, source_scale, template_sum
from .sources.bank import SourceBank
from .sources.colours import mag_to_nanomaggies
from .survey.cutout import Cutout
from .survey.maskbits import bad_bit_mask, unflagged

ROW_BANDS = "grz"  # bands with their own columns in the stamp schema
_HASHES: dict[int, tuple[Config, str]] = {}
_BANK_INDEX: dict[int, tuple[Any, dict[int, int]]] = {}


# -- small helpers ---------------------------------------------------------------------------
def _config_hash(cfg: Config) -> str:
    """config_hash(cfg), computed once per config object."""
    hit = _HASHES.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_HASHES) > 32:
            _HASHES.clear()
        hit = _HASHES[id(cfg)] = (cfg, config_hash(cfg))
    return hit[1]


def _f32_or_none(value: Any) -> float | None:
    v = _num(value)
    return None if v is None else f32(v)


def _snr_band(bands: str) -> int:
    """Index of the band the SNRs, HLR and magnification are measured in: r (else the first)."""
    return bands.index("r") if "r" in bands else 0


def _base_row(task: Mapping[str, Any], cutout: Cutout, cfg: Config) -> dict:
    row = dict.fromkeys(COLUMN_NAMES)
    row.update(
        task_id=int(task["task_id"]),
        galaxy_id=str(task["galaxy_id"]),
        brickname=str(task.get("brickname") or cutout.brickname or ""),
        ra=float(task["ra"]),
        dec=float(task["dec"]),
        split=str(task["split"]),
        role=str(task["role"]),
        cutout_ok=True,
        seed=int(cfg.seed),
        supersampling=int(cfg.render.supersampling),
        config_hash=_config_hash(cfg),
        code_version=code_version(),
    )
    for b in ROW_BANDS:
        row[f"psf_fwhm_{b}"] = _f32_or_none(task.get(f"psfsize_{b}"))
        row[f"psfdepth_{b}"] = _f32_or_none(task.get(f"psfdepth_{b}"))
        row[f"flux_{b}"] = _f32_or_none(task.get(f"flux_{b}"))
    return row


def _problem(task: Mapping[str, Any], cutout: Cutout, cfg: Config) -> str | None:
    """Why this task's stamp cannot be made (the same rules for controls and injections)."""
    if not cutout.ok:
        return cutout.reason or "cutout failed (no reason given)"
    nb, s = len(cfg.survey.bands), cfg.survey.stamp_size
    for name, arr, shape in (("image", cutout.image, (nb, s, s)), ("invvar", cutout.invvar, (nb, s, s)), ("maskbits", cutout.maskbits, (s, s))):
        if np.shape(arr) != shape:
            return f"cutout {name} has shape {np.shape(arr)}, expected {shape}"
    flags = fastrow.cutout_flags(np.ascontiguousarray(cutout.image), np.ascontiguousarray(cutout.invvar))  # one pass
    for name, arr, bad_any in (("image", cutout.image, flags[0]), ("invvar", cutout.invvar, flags[1])):
        if bad_any:
            bad = ~np.isfinite(arr)
            per_band = {cfg.survey.bands[b]: int(bad[b].sum()) for b in range(nb) if bad[b].any()}
            return f"cutout {name} has non-finite pixels (per band: {per_band})"
    if flags[2]:
        return "cutout invvar has negative pixels"
    if not flags[3]:
        return "cutout invvar is zero everywhere (no data)"
    for b in cfg.survey.bands:
        fwhm = _num(task.get(f"psfsize_{b}"))
        if fwhm is None or fwhm <= 0:
            return f"psfsize_{b} is missing or not positive ({task.get(f'psfsize_{b}')!r}): no PSF to convolve with"
    if cfg.source.brightness_mode == "dmag":
        flux_r = _num(task.get("flux_r"))
        if flux_r is None or flux_r <= 0:
            return f"brightness_mode 'dmag' needs the host flux_r > 0, got {task.get('flux_r')!r}"
    return None


def _bank_index(bank: SourceBank, cosmos_index: int) -> int:
    """Bank row of a ``cosmos_index`` (memoised per bank object)."""
    hit = _BANK_INDEX.get(id(bank))
    if hit is None or hit[0]() is not bank:
        lookup = {int(c): i for i, c in enumerate(np.asarray(bank.meta["cosmos_index"]))}
        hit = _BANK_INDEX[id(bank)] = (weakref.ref(bank), lookup)
    try:
        return hit[1][int(cosmos_index)]
    except KeyError:
        raise BankError(f"cosmos_index {cosmos_index} is not in source bank {bank.path}", path=bank.path, field="cosmos_index") from None


# -- the arc ---------------------------------------------------------------------------------
def arc_measures(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, cfg: Config) -> dict:
    """SNRs (arc_snr, arc_snr_sum, arc_snr_region, snr_reason) and lensed_hlr_arcsec of painted
    light, in the SNR band: the one definition for every painted role (arcs and roles.py's negatives)."""
    k = _snr_band(cfg.survey.bands)
    snr, snr_sum, snr_region, reason = fastrow.snr_metrics_fast(arc[k], invvar[k], maskbits, bad_mask=bad_bit_mask(cfg))
    return {"arc_snr": _num(snr), "arc_snr_sum": _num(snr_sum), "arc_snr_region": _num(snr_region), "snr_reason": reason,
            "lensed_hlr_arcsec": _num(fastrow.half_light_radius_fast(arc[k], cfg.survey.pixel_scale))}


def _good_pixels(cutout: Cutout, cfg: Config) -> np.ndarray:
    """Boolean [S, S] good-pixel mask for the acceptance SNRs: none of ``survey.bad_maskbits`` set
    (DESIGN 3.3; the per-band invvar > 0 is applied by the variance)."""
    return unflagged(cutout.maskbits, bad_bit_mask(cfg))


def _add_arc(arc: np.ndarray, cutout: Cutout, task_id: int, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(the stamp image float32 [B, S, S]: cutout + arc + the arc's shot noise where invvar > 0,
    the arc's flux per band float64 [B] (nanomaggies), summed in the same pass).

    Shot noise (physics.noise, on with ``render.arc_poisson_noise``): one Poisson draw per pixel
    with arc >= ARC_NOISE_MIN_SKY_FRACTION x the band's sky level and invvar > 0, in C order over
    (band, row, col), from the task's ``"noise"`` stream (sums in float64, as noise.arc_poisson_noise).
    """
    invvar = cutout.invvar
    n = 0
    index = np.empty(0, np.int64)
    lam = np.empty(0)
    counts = np.empty(0, np.int64)
    sky = np.ones(arc.shape[0])
    if cfg.render.arc_poisson_noise:
        sky = _sky(cfg)
        index, lam = np.empty(arc.size, np.int64), np.empty(arc.size)
        n = fastrow.noise_pixels(arc, invvar, sky, ARC_NOISE_MIN_SKY_FRACTION, index, lam)
        if n:
            counts = task_rng(cfg.seed, task_id, "noise").poisson(lam[:n])
    image = np.empty(arc.shape, np.float32)
    flux = fastrow.add_arc(cutout.image, arc, invvar, sky, index[:n], lam[:n], counts, image)
    return image, flux


_SKY: dict[int, tuple[Config, np.ndarray]] = {}


def _sky(cfg: Config) -> np.ndarray:
    """Sky level per band (nanomaggies per pixel), computed once per config object."""
    hit = _SKY.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_SKY) > 32:
            _SKY.clear()
        sky = sky_nanomaggies_per_pixel(cfg.survey.bands, cfg.render.sky_mag_arcsec2, cfg.survey.pixel_scale)
        sky.flags.writeable = False
        hit = _SKY[id(cfg)] = (cfg, sky)
    return hit[1]


def accepted_arc(row: dict, task: Mapping[str, Any], cutout: Cutout, bank: SourceBank, cfg: Config) -> tuple[Any, dict]:
    """The injection's arc without painting it: the lens from the host and sources behind it
    until the ``accept`` criteria pass (physics.trials.run_trials). Fills ``row`` with the
    population and acceptance values and, when there is an arc, the lens and source parameters
    and magnitudes. Returns (the final trial: ``arc`` float32 [B, S, S] nanomaggies, or None when
    no source could be placed; the PSFSIZE per band, arcsec). Painted negatives (roles.py) take
    their reference here, without the noise and measures of a full injection."""
    bands = cfg.survey.bands
    fwhms = {b: row[f"psf_fwhm_{b}"] if b in ROW_BANDS else f32(float(task[f"psfsize_{b}"])) for b in bands}
    host, t, n_tries, accepted = run_trials(task, cutout.image, cutout.invvar, _good_pixels(cutout, cfg), bank, fwhms, _sky(cfg), cfg)
    c = t.criteria
    row.update(
        lens_z=host.lens_z, lens_z_kind=host.lens_z_kind, lens_sigma_v=host.sigma_v, lens_sigma_v_kind=host.sigma_v_kind,
        theta_e_policy=cfg.lens.theta_e_policy, theta_e_status=t.theta_e_status, lens_e_kind=host.e_kind,
        src_z=t.src_z, accepted=accepted, n_tries=n_tries, accept_reason=t.reason,
        accept_magnification=_num(c.magnification), arc_snr_region_g=_num(c.snr_region_g), arc_snr_region_r=_num(c.snr_region_r),
        accept_resolvability=_num(c.resolvability), accept_contrast=_num(c.contrast),
    )
    if t.arc is None:
        return t, fwhms
    lens, src, meta = t.lens, t.src, bank.meta
    row.update(
        theta_e=lens.theta_e, lens_e1=lens.e1, lens_e2=lens.e2, shear_g1=lens.g1, shear_g2=lens.g2, lens_x=lens.x, lens_y=lens.y,
        cosmos_index=int(meta["cosmos_index"][t.index]),
        cosmos_ident=str(meta["ident"][t.index]) if "ident" in meta else None,
        src_x=src.x, src_y=src.y, src_rotation_deg=src.rotation_deg, src_flip=src.flip,
        src_dmag=t.src_dmag, brightness_mode=cfg.source.brightness_mode, source_hlr_arcsec=t.source_hlr,
    )
    for b in ROW_BANDS:
        if b in bands:
            row[f"src_mag_{b}"] = t.mags[b]
    return t, fwhms


# -- public ----------------------------------------------------------------------------------
def inject(task: Mapping[str, Any], cutout: Cutout, bank: SourceBank, cfg: Config) -> dict:
    """One stamp row for one task: the values of ``dataset.schema.COLUMN_NAMES`` plus the raw
    arrays of ``dataset.rows.ARRAY_KEYS`` (``dataset.rows.encode_row`` makes ``stamp_npz``/``arc_npz``).

    task: a task-table row (task_id, galaxy_id, brickname, ra, dec, bx, by, split, role,
    flux_g/r/z (nanomaggies), psfsize_g/r/z (arcsec FWHM), psfdepth_g/r/z, ...).
    cutout: the task's stamp (image/invvar float32 [B,S,S], maskbits int32 [S,S]).
    """
    row = _base_row(task, cutout, cfg)
    role = row["role"]
    if role not in ROLES:
        raise PhysicsError(f"task {row['task_id']} has role {role!r}, expected one of {list(ROLES)}", field="role", row=row["task_id"])
    problem = _problem(task, cutout, cfg)
    if problem is not None:
        row.update(cutout_ok=False, cutout_reason=problem)
        if role in PAINTED_ROLES:
            row["snr_reason"] = f"no stamp: {problem}"
        return row
    if role not in PAINTED_ROLES:  # control, impostor, known_lens: the host as it is
        row.update(image=cutout.image, invvar=cutout.invvar, maskbits=cutout.maskbits, grids=cutout.grids)  # dataset.rows encodes
        return row
    if role != "injection":  # unlensed, ring: roles.py (imported here: it builds on this module)
        from .roles import paint_negative

        return paint_negative(row, task, cutout, bank, cfg)

    t, fwhms = accepted_arc(row, task, cutout, bank, cfg)
    invvar = cutout.invvar
    if t.arc is None:  # no source could be placed behind this lens: the host alone, kept and flagged
        row.update(image=cutout.image, invvar=invvar, maskbits=cutout.maskbits, grids=cutout.grids)  # dataset.rows encodes
        row["snr_reason"] = f"no arc: {t.reason}"
        return row
    bands, src, mags, arc = cfg.survey.bands, t.src, t.mags, t.arc
    image, flux = _add_arc(arc, cutout, row["task_id"], cfg)
    row.update(image=image, invvar=invvar, maskbits=cutout.maskbits, grids=cutout.grids, host_image=cutout.image, arc=arc)  # dataset.rows encodes
    for b in ROW_BANDS:
        if b in bands:
            row[f"arc_flux_{b}"] = _num(flux[bands.index(b)])

    k = _snr_band(bands)
    row.update(arc_measures(arc, invvar, cutout.maskbits, cfg))
    b = bands[k]
    unlensed = float(mag_to_nanomaggies(mags[b])) * template_sum(bank, t.index) * unlensed_fraction_in_stamp(src.x, src.y, fwhms[b], cfg)
    row["magnification"] = _num(flux[k] / unlensed) if unlensed > 0 else None
    return row


def render_arc_from_row(row: Mapping[str, Any], bank: SourceBank, cfg: Config) -> np.ndarray:
    """Re-render a row's noiseless arc (float32 [B, S, S], nanomaggies) from its stored
    parameters and the bank; bit-identical to the row's ``arc_npz`` under the dataset's config
    (Moffat beta, PSF flux fraction, stamp geometry and bands come from ``cfg``)."""
    if row.get("role") != "injection" or row.get("theta_e") is None:
        raise PhysicsError(f"row {row.get('task_id')} has no arc to re-render (role {row.get('role')!r})", row=row.get("task_id"), field="theta_e")
    bands = cfg.survey.bands
    if any(b not in ROW_BANDS for b in bands):
        raise PhysicsError(f"rows only store g, r, z magnitudes; cannot re-render bands {bands!r}", field="survey.bands")
    lens = LensParams(
        theta_e=float(row["theta_e"]), e1=float(row["lens_e1"]), e2=float(row["lens_e2"]),
        g1=float(row["shear_g1"]), g2=float(row["shear_g2"]), x=float(row["lens_x"]), y=float(row["lens_y"]),
    )
    index = _bank_index(bank, int(row["cosmos_index"]))
    scale = source_scale(float(bank.meta["z_phot"][index]), float(row["src_z"]), cfg) if row.get("src_z") is not None else 1.0
    src = SourcePlacement(float(row["src_x"]), float(row["src_y"]), float(row["src_rotation_deg"]), bool(row["src_flip"]), float(bank.pixel_scale) * scale)
    mags = {b: float(row[f"src_mag_{b}"]) for b in bands}
    fwhms = {b: float(row[f"psf_fwhm_{b}"]) for b in bands}
    template = bank.template(index)
    return render_arc(template, lens, src, mags, fwhms, cfg, int(row["supersampling"]))
