"""Sky regions for real stamps: known lenses and impostors split by HEALPix cell, with the
evaluation anchors kept out of training.

A real lens seen in training and again in evaluation inflates recall, and so do its neighbours
on the sky (same survey depth, same seeing, same imaging artefacts): real stamps are therefore
split by sky region, not row by row (the practice of the Euclid Q1 lens-finding papers, and
cross-validation by region in general). The sky is cut into nested HEALPix cells
(``tasks.region_nside``; astropy-healpix, Gorski et al. 2005), each cell's split is a salted
blake2b hash of its index (``ids.split_of_unit``, fractions ``tasks.region_split_fractions``),
and any position within ``tasks.anchor_exclusion_arcsec`` of an evaluation anchor goes to
``test`` whatever its cell, with the reason written down.

:func:`position_table` turns a catalogue (ra, dec, name) into a position table for ``stage``
(columns ``task_id, galaxy_id, brickname, ra, dec, split, role`` + ``name, region_cell,
split_reason``); ``stage`` cuts the stamps and ``generate --hosts`` writes them as rows of role
``known_lens`` (label 1) or ``impostor`` (label 0), unpainted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .config import Config
from .errors import CatalogError
from .ids import hash_unit, split_of_unit
from .survey.bricks import brickname_for

REAL_ROLES = ("known_lens", "impostor")
# catalogue columns a position table carries on to the host and stamp rows (units as DR10's tractor)
PASS_THROUGH = tuple(f"{q}_{b}" for q in ("psfsize", "psfdepth", "flux") for b in "grz")
# task_id of a catalogue position: a release code above any survey release in the top bits
# (ids.py layout: release << 41), so it never collides with an LRG task, and 41 bits of the
# blake2b hash of (role, name) below.
_RELEASE_CODE = {"known_lens": 16001, "impostor": 16002}


def region_cells(ra: np.ndarray, dec: np.ndarray, nside: int) -> np.ndarray:
    """Nested HEALPix cell (int64) of each position (ra, dec in degrees)."""
    import astropy.units as u
    from astropy_healpix import HEALPix

    ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CatalogError(f"position {i} has ra={ra[i]!r}, dec={dec[i]!r}: not a sky position", row=i, field="dec")
    return np.asarray(HEALPix(nside=nside, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg), np.int64)


def region_splits(cells: np.ndarray, cfg: Config) -> list[str]:
    """Split of each cell: salted hash of the cell index (``tasks.region_salt``), fractions
    ``tasks.region_split_fractions``."""
    t = cfg.tasks
    memo: dict[int, str] = {}
    out = []
    for c in np.asarray(cells, np.int64).tolist():
        if c not in memo:
            memo[c] = split_of_unit(hash_unit(f"{t.region_nside}:{c}", t.region_salt), t.region_split_fractions)
        out.append(memo[c])
    return out


def near_anchors(ra: np.ndarray, dec: np.ndarray, anchor_ra: np.ndarray, anchor_dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Index of the nearest anchor within ``radius_arcsec`` of each position, -1 where none (astropy)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    out = np.full(len(ra), -1, np.int64)
    if len(ra) == 0 or len(anchor_ra) == 0:
        return out
    pos = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    anc = SkyCoord(np.asarray(anchor_ra, float) * u.deg, np.asarray(anchor_dec, float) * u.deg)
    idx, sep, _ = pos.match_to_catalog_sky(anc)
    hit = sep.arcsec <= radius_arcsec
    out[hit] = idx[hit]
    return out


def _task_id(role: str, name: str) -> int:
    low = int.from_bytes(hashlib.blake2b(f"{role}:{name}".encode(), digest_size=8).digest(), "little") & (2**41 - 1)
    return (_RELEASE_CODE[role] << 41) | low


def position_table(ra: Sequence[float], dec: Sequence[float], names: Sequence[str], role: str, cfg: Config,
                   anchor_ra: Sequence[float] = (), anchor_dec: Sequence[float] = (), anchor_names: Sequence[str] = (),
                   bricknames: Sequence[str] | None = None, extra: dict[str, Sequence[float]] | None = None) -> pa.Table:
    """A position table of real stamps of ``role`` (``known_lens`` or ``impostor``) for ``stage``:
    split by sky region, positions near an evaluation anchor (``anchor_*``, degrees) forced to
    ``test``; every row says why it has its split (``split_reason``). ``bricknames``: the brick
    of each position when the sky is not DR10's grid (default ``survey.bricks.brickname_for``).
    ``extra``: float columns passed through (:data:`PASS_THROUGH`: the host's DR10 PSF size,
    depth and flux at the position, e.g. from a sweep match; without ``psfsize_*`` a stamp is
    ``cutout_ok = false``, the rule every role follows). Rows sorted by task_id."""
    if role not in REAL_ROLES:
        raise CatalogError(f"role {role!r} is not a real-stamp role {list(REAL_ROLES)}", field="role")
    ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    names = [str(n) for n in names]
    if not (len(ra) == len(dec) == len(names)):
        raise CatalogError(f"ra, dec and names differ in length ({len(ra)}, {len(dec)}, {len(names)})", field="name")
    dup = [n for n, k in Counter(names).items() if k > 1]
    if dup:
        raise CatalogError(f"catalogue names must be unique (they fix task_id); repeated: {sorted(dup)[:5]}", field="name")
    cells = region_cells(ra, dec, cfg.tasks.region_nside)
    splits = region_splits(cells, cfg)
    reasons = [f"region {cfg.tasks.region_nside}:{c}" for c in cells.tolist()]
    near = near_anchors(ra, dec, np.asarray(anchor_ra, float), np.asarray(anchor_dec, float), cfg.tasks.anchor_exclusion_arcsec)
    for i in np.flatnonzero(near >= 0).tolist():
        if splits[i] != "test":
            label = anchor_names[near[i]] if len(anchor_names) else f"#{near[i]}"
            splits[i], reasons[i] = "test", f"within {cfg.tasks.anchor_exclusion_arcsec:g} arcsec of evaluation anchor {label}"
    tids = [_task_id(role, n) for n in names]
    order = np.argsort(tids, kind="stable")
    col = lambda xs: [xs[i] for i in order]  # noqa: E731
    return pa.table({
        "task_id": pa.array(col(tids), pa.int64()),
        "galaxy_id": pa.array(col([f"{role}:{n}" for n in names]), pa.string()),
        "brickname": pa.array(col(list(bricknames) if bricknames is not None else [brickname_for(float(a), float(d)) for a, d in zip(ra, dec, strict=True)]), pa.string()),
        "ra": pa.array(ra[order]), "dec": pa.array(dec[order]),
        "split": pa.array(col(splits), pa.string()), "role": pa.array([role] * len(names), pa.string()),
        "name": pa.array(col(names), pa.string()), "region_cell": pa.array(cells[order], pa.int64()),
        "split_reason": pa.array(col(reasons), pa.string()),
        **{k: pa.array(np.asarray(v, np.float32)[order], pa.float32()) for k, v in (extra or {}).items() if k in PASS_THROUGH},
    })
