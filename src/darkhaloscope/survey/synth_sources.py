"""Sources of the synthetic sky, drawn per sky cell (not per brick), so any brick layout with
the same seed sees the same sources.

The global pixel plane is cut into cells of ``CELL`` px; each cell's sources come from a random
generator seeded by (seed, kind, cell). Densities are ``<kind>_per_brick / brick_size_pix^2``.

Populations (magnitudes AB, sizes arcsec, fluxes nanomaggies, extinction-free):
- LRGs: z_phot ~ U(0.3, 0.8); r in [18, 22.3] with counts rising as 10^(0.3 r) (the DESI LRG cut
  z_fiber < 21.6 then removes the faintest, as it does in DR10); red colours
  rising with redshift (g-r 1.45-2.0, r-z 0.9-1.7, z-W1 0.9-1.5, scatter 0.06-0.08), typical of
  DESI DR9/DR10 LRGs (Zhou et al. 2023 fig. 2-4), so most pass the LRG cuts; 55 % de Vaucouleurs
  (DEV), 35 % Sersic n in {2, 2.5, 3, 5, 6} (SER), 10 % exponential (EXP); half-light radius
  ~1.0" at r = 19 shrinking 0.15 dex per mag, 0.15 dex scatter, clipped to 0.3-3"; axis ratio
  U(0.5, 1).
- other galaxies: r in [19, 23.5] rising as 10^(0.35 r); blue (g-r 0.3-0.9, r-z 0.2-0.8,
  z-W1 -0.6-0.6); EXP or REX, hlr 0.3-1.5".
- stars: r in [10, 22] with counts rising as 10^(0.28 r); stellar-locus colours with AB
  z-W1 in [-1.4, -0.6] (fails the LRG non-stellar cut); Gaia G ~ r + 0.2.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import Config

CELL = 256  # px; cell side of the source lattice
LRG_R_MIN, LRG_R_MAX = 18.0, 22.3  # AB: with r - z 0.9-1.7 this spans the DESI LRG cut z_fiber < 21.6 (Zhou et al. 2023)
STAR_R_MIN, STAR_R_MAX, STAR_SLOPE = 10.0, 22.0, 0.28  # dN/dm ~ 10^(0.28 r): at b ~ 45 deg, ~0.3 % of stars
# have G < 13 (BRIGHT masks), ~2 % G < 16 (MEDIUM), as Gaia counts at high latitude
KINDS = {"lrg": 1, "gal": 2, "star": 3}
SERSIC_N = {"DEV": 4.0, "EXP": 1.0, "REX": 1.0, "PSF": 0.0}


def _cell_rng(seed: int, kind: str, cx: int, cy: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), KINDS[kind], cx + 2**30, cy + 2**30]))


def _powerlaw_mag(rng, n, lo, hi, slope):
    """Magnitudes in [lo, hi] with dN/dm ~ 10^(slope m) (inverse CDF)."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.uniform(0, 1, n) * (b - a)) / slope


def _draw_kind(rng, kind: str, n: int) -> dict:
    out: dict[str, np.ndarray] = {}
    if kind == "lrg":
        z = rng.uniform(0.3, 0.8, n)
        r = _powerlaw_mag(rng, n, LRG_R_MIN, LRG_R_MAX, 0.3)
        gr = 1.45 + 1.1 * (z - 0.3) + rng.normal(0, 0.08, n)
        rz = 0.9 + 1.6 * (z - 0.3) + rng.normal(0, 0.08, n)
        zw1 = 0.9 + 1.2 * (z - 0.3) + rng.normal(0, 0.06, n)
        u = rng.uniform(0, 1, n)
        typ = np.where(u < 0.55, "DEV", np.where(u < 0.9, "SER", "EXP"))
        ser_n = np.where(typ == "DEV", 4.0, np.where(typ == "EXP", 1.0, rng.choice([2.0, 2.5, 3.0, 5.0, 6.0], n)))
        hlr = np.clip(10 ** (0.0 - 0.15 * (r - 19.0) + rng.normal(0, 0.15, n)), 0.3, 3.0)
        q = rng.uniform(0.5, 1.0, n)
        out["z_phot"] = z
    elif kind == "gal":
        r = _powerlaw_mag(rng, n, 19.0, 23.5, 0.35)
        gr = rng.uniform(0.3, 0.9, n)
        rz = rng.uniform(0.2, 0.8, n)
        zw1 = rng.uniform(-0.6, 0.6, n)
        typ = np.where(rng.uniform(0, 1, n) < 0.6, "EXP", "REX")
        ser_n = np.ones(n)
        hlr = rng.uniform(0.3, 1.5, n)
        q = np.where(typ == "REX", 1.0, rng.uniform(0.3, 1.0, n))
        out["z_phot"] = np.full(n, np.nan)
    else:
        r = _powerlaw_mag(rng, n, STAR_R_MIN, STAR_R_MAX, STAR_SLOPE)
        gr = rng.uniform(0.3, 1.4, n)
        rz = 0.1 + 0.6 * (gr - 0.3) + rng.normal(0, 0.05, n)
        zw1 = rng.uniform(-1.4, -0.6, n)
        typ = np.full(n, "PSF")
        ser_n = np.zeros(n)
        hlr = np.zeros(n)
        q = np.ones(n)
        out["z_phot"] = np.full(n, np.nan)
    phi = rng.uniform(0, math.pi, n)
    e = (1 - q) / (1 + q)
    out.update(
        mag_r=r, mag_g=r + gr, mag_z=r - rz, mag_w1=r - rz - zw1,
        type=typ.astype("<U3"), sersic=ser_n, shape_r=hlr,
        shape_e1=e * np.cos(2 * phi), shape_e2=e * np.sin(2 * phi),
    )
    out["gaia_g"] = np.where(typ == "PSF", r + 0.2, 0.0)
    return out


def _cell(cfg: Config, kind: str, dens: float, cx: int, cy: int) -> dict:
    """The sources of one cell (columns of :func:`_draw_kind` plus x, y, kind and a thinning mark)."""
    rng = _cell_rng(cfg.seed, kind, cx, cy)
    n = int(rng.poisson(dens * CELL * CELL))
    if n == 0:
        return {}
    x = cx * CELL + rng.uniform(0, CELL, n) - 0.5
    y = cy * CELL + rng.uniform(0, CELL, n) - 0.5
    props = _draw_kind(rng, kind, n)
    mark = rng.uniform(0, 1, n)  # drawn last: the other columns do not depend on the thinning
    return {"x": x, "y": y, "kind": np.full(n, kind, "<U4"), **props, "_mark": mark}


def _hard_core_keep(cfg: Config, cell: dict, cx: int, cy: int, dens: float, sep: float) -> np.ndarray:
    """Matern type-II thinning of one cell's LRGs: keep a point unless another point within
    ``sep`` px (in this or a neighbouring cell) has a smaller mark. Local (needs only the
    neighbours' draws), so every box sees the same points."""
    near = [c for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (c := _cell(cfg, "lrg", dens, cx + dx, cy + dy))]
    nx = np.concatenate([c["x"] for c in near])
    ny = np.concatenate([c["y"] for c in near])
    nm = np.concatenate([c["_mark"] for c in near])
    d2 = (cell["x"][:, None] - nx[None]) ** 2 + (cell["y"][:, None] - ny[None]) ** 2
    beaten = (d2 < sep * sep) & (nm[None] < cell["_mark"][:, None])
    return ~beaten.any(axis=1)


def sources_in_box(cfg: Config, xlo: float, xhi: float, ylo: float, yhi: float) -> dict:
    """Every source whose cell overlaps the global pixel box [xlo, xhi) x [ylo, yhi).

    Returns columns (numpy arrays): x, y (global pixels), kind, and the physical columns of
    :func:`_draw_kind`, ordered by (kind, cell row, cell column, index): any two sources keep
    their relative order whatever the box, so renders add them in the same order. With
    ``lrg_min_separation_pix`` > 0 the LRGs are thinned to a hard core (:func:`_hard_core_keep`).
    """
    s = cfg.survey.synthetic
    area = float(s.brick_size_pix) ** 2
    dens = {"lrg": s.lrg_per_brick / area, "gal": s.galaxies_per_brick / area, "star": s.stars_per_brick / area}
    sep = float(s.lrg_min_separation_pix)
    if sep >= CELL:
        raise ValueError(f"lrg_min_separation_pix {sep} must be below the source cell ({CELL} px)")
    cols: dict[str, list] = {}
    for kind in KINDS:
        if dens[kind] <= 0:
            continue
        for cy in range(math.floor(ylo / CELL), math.floor((yhi - 1e-9) / CELL) + 1):
            for cx in range(math.floor(xlo / CELL), math.floor((xhi - 1e-9) / CELL) + 1):
                cell = _cell(cfg, kind, dens[kind], cx, cy)
                if not cell:
                    continue
                if kind == "lrg" and sep > 0:
                    keep = _hard_core_keep(cfg, cell, cx, cy, dens[kind], sep)
                    cell = {k: v[keep] for k, v in cell.items()}
                for k, v in cell.items():
                    if k != "_mark":
                        cols.setdefault(k, []).append(v)
    if not cols:
        return {}
    return {k: np.concatenate(v) for k, v in cols.items()}
