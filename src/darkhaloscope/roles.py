"""Row makers of the painted non-lensing roles (``unlensed``, ``ring``) and the re-render of any
painted row from its parameters.

Both negatives are matched, task by task, to the injection the same task would have had: the
task's injection is drawn as usual (``inject.accepted_arc``: same streams, same acceptance) and that arc
gives the Einstein radius that scales the negative's size and the band fluxes it is painted
with, so every negative role has the injections' brightness and size distributions by
construction (including any acceptance rule the injection path applies). The negative's own
draws come from the task's ``"negative"`` stream; its shot noise from the ``"noise"`` stream,
through the same code as an arc (inject._add_arc), and its SNRs, flux and HLR are measured
like an arc's.

- ``unlensed``: the same bank source (template, rotation, flip) not lensed, at 1-3 theta_E
  from the host centre (physics/unlensed.py), painted with the arc's band fluxes: the source's
  own colours (lensing is achromatic) and the arc's brightness.
- ``ring``: a procedural look-alike (physics/lookalikes.py): kind by ``negatives.kind_weights``,
  radius ``negatives.radius_min..max`` x theta_E, colours of the host itself (its g-r, r-z plus
  ``negatives.host_colour_scatter``; the reference arc's colours where the host has no flux in
  a band), r-band flux equal to the arc's.

Radii are capped at theta_e_max (1 + source_radius_fraction), the largest radius an arc
reaches, so the report's outer annulus (its nuisance pixels) is free of painted light for every role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import LOOKALIKE_KINDS, Config
from .errors import PhysicsError
from .ids import task_rng
from .inject import (
    ROW_BANDS,
    _add_arc,
    _bank_index,
    _num,
    accepted_arc,
    arc_measures,
    render_arc_from_row,
)
from .physics import fastrow
from .physics.arc import bands_from_unit
from .physics.lookalikes import Lookalike, lookalike_unit
from .physics.params import f32
from .physics.render import SourcePlacement
from .physics.unlensed import draw_companion_position, render_unlensed_unit
from .sources.bank import SourceBank
from .sources.colours import band_magnitudes, nanomaggies_to_mag
from .survey.cutout import Cutout

NEGATIVE_PAINTED_ROLES = ("unlensed", "ring")


def _r_max(cfg: Config) -> float:
    """Largest radius an arc reaches (arcsec): painted negatives stay inside it."""
    return float(cfg.lens.theta_e_max * (1.0 + cfg.lens.source_radius_fraction))


def lookalike_from_row(row: Mapping[str, Any]) -> Lookalike:
    """The :class:`Lookalike` a ``ring`` row stores (its ``lookalike_*`` columns)."""
    g = {k: row[f"lookalike_{k}"] for k in ("kind", "x", "y", "radius", "width", "q", "pa_deg", "span_deg", "phase_deg", "pitch_deg", "arms", "clumps", "clump_fraction", "seed")}
    missing = [k for k, v in g.items() if v is None]
    if missing:
        raise PhysicsError(f"ring row {row.get('task_id')} lacks lookalike_{missing[0]}", row=row.get("task_id"), field=f"lookalike_{missing[0]}")
    return Lookalike(str(g["kind"]), *(float(g[k]) for k in ("x", "y", "radius", "width", "q", "pa_deg", "span_deg", "phase_deg", "pitch_deg")),
                     int(g["arms"]), int(g["clumps"]), float(g["clump_fraction"]), int(g["seed"]))


def draw_lookalike(rng: np.random.Generator, theta_e: float, centre: tuple[float, float], cfg: Config) -> Lookalike:
    """A look-alike's parameters (float32-rounded, what the row keeps); sizes scale with theta_e
    arcsec. Every value is drawn whatever the kind, so the stream stays aligned."""
    n = cfg.negatives
    kinds = [k for k in LOOKALIKE_KINDS if n.kind_weights.get(k, 0) > 0]
    w = np.array([n.kind_weights[k] for k in kinds], float)
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    radius = min(rng.uniform(n.radius_min, n.radius_max) * theta_e, _r_max(cfg))
    width, q = rng.uniform(n.width_min, n.width_max), rng.uniform(n.q_min, 1.0)
    pa, span, phase = rng.uniform(0.0, 180.0), rng.uniform(n.span_min, n.span_max), rng.uniform(0.0, 360.0)
    pitch = rng.uniform(n.pitch_min, n.pitch_max)
    arms = int(rng.integers(1, 4))
    clumps = int(rng.integers(0, n.clumps_max + 1))
    clump_fraction = rng.uniform(0.0, n.clump_fraction_max)
    seed = int(rng.integers(0, 2**62))
    if kind in ("ring", "spiral"):
        span = 360.0
    return Lookalike(kind, f32(centre[0]), f32(centre[1]), f32(radius), f32(width), f32(q), f32(pa), f32(span), f32(phase), f32(pitch),
                     arms, clumps if clump_fraction > 0 else 0, f32(clump_fraction), seed)


def host_colour_mags(task: Mapping[str, Any], ref_mags: Mapping[str, float], rng: np.random.Generator, cfg: Config) -> dict[str, float]:
    """Band magnitudes of a look-alike: r from the reference arc, g-r and r-z of the host
    (task flux_g/r/z, nanomaggies) plus Gaussian scatter ``negatives.host_colour_scatter`` mag;
    a colour whose host fluxes are missing or not positive takes the reference arc's colour."""
    host = {b: _num(task.get(f"flux_{b}")) for b in "grz"}
    scatter = rng.normal(0.0, cfg.negatives.host_colour_scatter, 2)

    def colour(a: str, b: str, k: int) -> float:
        if host[a] and host[b] and host[a] > 0 and host[b] > 0:
            return float(nanomaggies_to_mag(host[a]) - nanomaggies_to_mag(host[b])) + float(scatter[k])
        return float(ref_mags[a] - ref_mags[b])

    colours = {"g_minus_r": colour("g", "r", 0), "r_minus_z": colour("r", "z", 1), "r_minus_i": 0.0}
    return {b: f32(m) for b, m in band_magnitudes(float(ref_mags["r"]), colours, cfg.survey.bands).items()}


def _unit_of_row(row: Mapping[str, Any], bank: SourceBank | None, cfg: Config, supersampling: int) -> np.ndarray:
    """The painted shape (flux per pixel, unit flux) of an ``unlensed`` or ``ring`` row."""
    s, pix = cfg.survey.stamp_size, cfg.survey.pixel_scale
    if row["role"] == "ring":
        return lookalike_unit(lookalike_from_row(row), s, pix, cfg.negatives.supersampling)
    if bank is None:
        raise PhysicsError("an unlensed row needs the source bank to re-render", row=row.get("task_id"), field="cosmos_index")
    src = SourcePlacement(float(row["src_x"]), float(row["src_y"]), float(row["src_rotation_deg"]), bool(row["src_flip"]), float(bank.pixel_scale))
    template = bank.template(_bank_index(bank, int(row["cosmos_index"])))
    r = cfg.render
    return render_unlensed_unit(template, src, s, pix, supersampling, r.faint_supersampling, r.core_fraction, r.ray_spacing)


def render_painted_from_row(row: Mapping[str, Any], bank: SourceBank | None, cfg: Config) -> np.ndarray:
    """Re-render what a painted row added to its host (float32 [B, S, S] nanomaggies, noiseless)
    from its stored parameters: bit-identical to its ``arc_npz`` under the dataset's config."""
    role = row.get("role")
    if role == "injection":
        return render_arc_from_row(row, bank, cfg)
    if role not in NEGATIVE_PAINTED_ROLES or row.get("src_mag_r") is None:
        raise PhysicsError(f"row {row.get('task_id')} has nothing painted to re-render (role {role!r})", row=row.get("task_id"), field="role")
    bands = cfg.survey.bands
    mags = {b: float(row[f"src_mag_{b}"]) for b in bands}
    fwhms = {b: float(row[f"psf_fwhm_{b}"]) for b in bands}
    return bands_from_unit(_unit_of_row(row, bank, cfg, int(row["supersampling"])), mags, fwhms, cfg)


def paint_negative(row: dict, task: Mapping[str, Any], cutout: Cutout, bank: SourceBank, cfg: Config) -> dict:
    """Fill ``row`` (a base row whose cutout is usable) for an ``unlensed`` or ``ring`` task: its
    values and the raw arrays of ``dataset.rows.ARRAY_KEYS`` (the dataset layer encodes)."""
    role, task_id = row["role"], row["task_id"]
    bands = cfg.survey.bands
    if any(b not in ROW_BANDS for b in bands):
        raise PhysicsError(f"painted negatives store g, r, z magnitudes only; bands {bands!r} are not supported", field="survey.bands")
    # the reference: the arc this task would carry as an injection (its parameters and flux; not
    # painted, so no noise or measures are spent on it)
    ref = dict(row)
    t, _ = accepted_arc(ref, {**task, "role": "injection"}, cutout, bank, cfg)
    sums = fastrow.band_sums(t.arc) if t.arc is not None else [None] * len(bands)  # as _add_arc sums
    ref_flux = {b: _num(sums[i]) for i, b in enumerate(bands)}
    if ref.get("theta_e") is None or not all(f and f > 0 for f in ref_flux.values()):
        row.update(cutout_ok=False, cutout_reason=f"no reference injection to match: {t.reason if t.arc is None else ref_flux}")
        return row
    ref_mags = {b: f32(float(nanomaggies_to_mag(ref_flux[b]))) for b in bands}
    theta_e, centre = float(ref["theta_e"]), (float(ref["lens_x"]), float(ref["lens_y"]))
    rng = task_rng(cfg.seed, task_id, "negative")
    row["ref_theta_e"] = ref["theta_e"]
    # The negative stands in for its reference arc (same flux, same size scale), so it is kept
    # exactly when that arc is: an unaccepted (undetectable) reference makes an unaccepted negative,
    # and the trainer's selection (ml/selection.py) treats both alike; otherwise the kept negatives
    # would be fainter than the kept injections and brightness would become a label.
    row.update(accepted=ref.get("accepted"), n_tries=ref.get("n_tries"))
    if role == "unlensed":
        n = cfg.negatives
        x, y, sep = draw_companion_position(rng, theta_e, centre, n.unlensed_sep_min, n.unlensed_sep_max, _r_max(cfg))
        row.update(lookalike_kind="companion", lookalike_x=f32(centre[0]), lookalike_y=f32(centre[1]), lookalike_radius=sep,
                   cosmos_index=ref["cosmos_index"], cosmos_ident=ref["cosmos_ident"], src_x=x, src_y=y,
                   src_rotation_deg=ref["src_rotation_deg"], src_flip=ref["src_flip"], source_hlr_arcsec=ref["source_hlr_arcsec"],
                   brightness_mode=ref["brightness_mode"])
        mags = ref_mags
    else:
        p = draw_lookalike(rng, theta_e, centre, cfg)
        row.update({f"lookalike_{k}": getattr(p, k) for k in ("kind", "x", "y", "radius", "width", "q", "pa_deg", "span_deg", "phase_deg", "pitch_deg", "arms", "clumps", "clump_fraction", "seed")})
        mags = host_colour_mags(task, ref_mags, rng, cfg)
    for b in bands:
        row[f"src_mag_{b}"] = mags[b]
    arc = render_painted_from_row(row, bank, cfg)
    image, flux = _add_arc(arc, cutout, task_id, cfg)
    row.update(image=image, invvar=cutout.invvar, maskbits=cutout.maskbits, grids=cutout.grids, host_image=cutout.image, arc=arc)  # dataset.rows encodes
    for b in bands:
        row[f"arc_flux_{b}"] = _num(flux[bands.index(b)])
    row.update(arc_measures(arc, cutout.invvar, cutout.maskbits, cfg))
    return row
