"""Real-lens anchor sets from known-lens catalogs (the honest test of a lens finder).

The seeds evaluated a ground-based finder on SLACS/BELLS, lenses found by spectroscopy and
confirmed with HST, whose arcs are mostly invisible at 0.262"/px (failure analysis 4.2). Here
the PRIMARY set is lenses discovered in DECam ground-based imaging (the DR10 camera): Huang
2020/2021, Storfer 2022, Stein 2021, Jacobs 2019, Rojas 2021, Zaborowski 2022, AGEL (Tran 2022),
O'Donnell 2021, Diehl 2017. SLACS/BELLS (incl. BELLS GALLERY and SLACS XIII) are a separate set,
for an upper-bound / comparison number; lenses found in other ground-based imaging (KiDS, HSC,
CFHTLS, Pan-STARRS, UNIONS) a third set (they are often deeper than DR10).

Inputs: lenscat's ``catalog.csv`` (name, RA [deg], DEC [deg], zlens, type, grading, ref), the
Stein et al. 2021 TSVs (ra, dec, ..., grade), and any CSV with ``ra, dec, name, grade,
reference`` (optional ``theta_e`` [arcsec], ``z_lens``, ``lens_type``, ``anchor_set``).
References are identified from the ``ref`` text by arXiv id / DOI / bibcode (see REFERENCES).
Entries closer than ``match_radius`` (2") are merged (friends-of-friends over astropy
``search_around_sky`` pairs); the merged anchor keeps every reference, catalog and grade.

DR10 footprint: DR10 re-processed only DECam data, which covers Dec <= +32.375 deg (north of
that the Legacy Surveys are BASS/MzLS, DR9 only). ``in_dr10`` is this declination cut alone
(DEC_MIN_DR10 <= dec <= DEC_MAX_DR10); holes and the Galactic plane (|b| < ~18 deg) are not
modelled here, ``gal_b`` is kept so they can be cut; a missing cutout reveals the rest.

This module merges and writes the anchor table; the known papers and the citation parser are in
:mod:`.anchor_references`, the catalog readers in :mod:`.anchor_catalogs` (both re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CatalogError, DataFileError
from .anchor_catalogs import ENTRY_COLUMNS, _check_columns, read_catalog, reference_counts
from .anchor_references import (
    REFERENCES,
    SET_GROUND,
    SET_GROUND_OTHER,
    SET_OTHER,
    SET_SLACS_BELLS,
    SETS,
    STEIN_TRAINING,
    Reference,
    parse_references,
    reference_set,
)

__all__ = [
    "DEC_MAX_DR10", "DEC_MIN_DR10", "ENTRY_COLUMNS", "MATCH_RADIUS_ARCSEC", "REFERENCES", "SETS", "SET_GROUND",
    "SET_GROUND_OTHER", "SET_OTHER", "SET_SLACS_BELLS", "STEIN_TRAINING", "Reference", "build_anchors",
    "default_catalogs", "match_groups", "merge_entries", "parse_references", "read_anchors", "read_catalog",
    "reference_counts", "reference_set", "write_anchors",
]

MATCH_RADIUS_ARCSEC = 2.0
DEC_MIN_DR10 = -90.0
DEC_MAX_DR10 = 32.375  # DR10 south (DECam) limit, legacysurvey.org/dr10/description

_GRADE_RANK = {"A": 0, "confident": 0, "B": 1, "probable": 1, "C": 2}


# ---------------------------------------------------------------- merging
def match_groups(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float = MATCH_RADIUS_ARCSEC) -> np.ndarray:
    """Group label per position: friends-of-friends within ``radius_arcsec`` (deg in, int out)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ra)
    if n == 0:
        return np.zeros(0, np.int64)
    c = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    i, j, _, _ = c.search_around_sky(c, radius_arcsec * u.arcsec)
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def _mean_radec(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    r, d = np.radians(ra), np.radians(dec)
    v = np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).mean(axis=1)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1]))))


def _best_grade(grades: Sequence[str]) -> str:
    gs = [g for g in grades if g]
    return min(gs, key=lambda g: (_GRADE_RANK.get(g, 9), g)) if gs else ""


def merge_entries(entries: pd.DataFrame, radius_arcsec: float = MATCH_RADIUS_ARCSEC,
                  dec_min: float = DEC_MIN_DR10, dec_max: float = DEC_MAX_DR10) -> pd.DataFrame:
    """One row per distinct lens: entries within ``radius_arcsec`` merged, sets assigned.

    Set membership (boolean columns ``set_<name>``): a lens is in a set when any of its
    references belongs to it (or a generic CSV forces it); cluster-scale lenses
    (``lens_type == 'cluster'``) stay in ``other`` only, their Einstein radii (>5") exceed a
    64-pixel stamp's useful field. ``anchor_set`` is the first set in SETS order it belongs to.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    labels = match_groups(entries["ra"].to_numpy(), entries["dec"].to_numpy(), radius_arcsec)
    cols = {c: entries[c].tolist() for c in ENTRY_COLUMNS}
    ra_all, dec_all = entries["ra"].to_numpy(), entries["dec"].to_numpy()
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    rows = []
    for idx in np.split(order, bounds):  # pure-python per group: ~35k groups in < 1 s
        idx = idx.tolist()
        if len(idx) == 1:
            ra, dec = float(ra_all[idx[0]]), float(dec_all[idx[0]])
        else:
            ra, dec = _mean_radec(ra_all[idx], dec_all[idx])
        refs: list[str] = []
        for i in idx:
            refs += [k for k in cols["references"][i] if k not in refs]
        types = [cols["lens_type"][i] for i in idx if cols["lens_type"][i]]
        lens_type = "cluster" if types and all(t == "cluster" for t in types) else next((t for t in types if t != "cluster"), "")
        member = {s: False for s in SETS}
        for k in refs:
            member[reference_set(k)] = True
        for i in idx:
            if cols["forced_set"][i]:
                member[cols["forced_set"][i]] = True
        if lens_type == "cluster":
            member = {s: s == SET_OTHER for s in SETS}
        if not any(member[s] for s in SETS[:-1]):
            member[SET_OTHER] = True
        z = [cols["z_lens"][i] for i in idx if np.isfinite(cols["z_lens"][i])]
        te = [cols["theta_e"][i] for i in idx if np.isfinite(cols["theta_e"][i])]
        names = [cols["name"][i] for i in idx if cols["name"][i]]
        grades = [cols["grade"][i] for i in idx]
        rows.append({
            "name": names[0] if names else f"J{ra:.5f}{dec:+.5f}",
            "ra": ra, "dec": dec,
            "anchor_set": next(s for s in SETS if member[s]),
            **{f"set_{s}": member[s] for s in SETS},
            "grade": _best_grade(grades),
            "grades": ";".join(sorted({g for g in grades if g})),
            "references": ";".join(refs),
            "catalogs": ";".join(sorted({cols["catalog"][i] for i in idx})),
            "aliases": ";".join(dict.fromkeys(names)),
            "lens_type": lens_type,
            "z_lens": float(z[0]) if z else np.nan,
            "theta_e": float(te[0]) if te else np.nan,
            "n_merged": len(idx),
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["in_dr10"] = (out["dec"] >= dec_min) & (out["dec"] <= dec_max)
    out["gal_b"] = SkyCoord(out["ra"].to_numpy() * u.deg, out["dec"].to_numpy() * u.deg).galactic.b.deg
    out = out.sort_values(["ra", "dec"], kind="mergesort").reset_index(drop=True)
    out.insert(0, "anchor_id", [f"A{ra:09.5f}{dec:+09.5f}" for ra, dec in zip(out["ra"], out["dec"], strict=True)])
    return out


def default_catalogs(shared_data: str | Path) -> list[Path]:
    """lenscat + Stein 2021 files under a shared-data folder (the test and demo inputs)."""
    root = Path(shared_data)
    return [root / "lenscat" / "catalog.csv", *sorted((root / "known_lenses").glob("*.tsv"))]


def build_anchors(catalogs: Sequence[str | Path], radius_arcsec: float = MATCH_RADIUS_ARCSEC,
                  dec_min: float = DEC_MIN_DR10, dec_max: float = DEC_MAX_DR10) -> tuple[pd.DataFrame, dict]:
    """(merged anchor table, summary dict) from catalog files. Deterministic row order."""
    if not catalogs:
        raise CatalogError("no anchor catalogs given")
    entries = pd.concat([read_catalog(p) for p in catalogs], ignore_index=True)
    anchors = merge_entries(entries, radius_arcsec, dec_min, dec_max)
    summary = {
        "catalogs": [str(p) for p in catalogs],
        "n_entries": int(len(entries)),
        "n_anchors": int(len(anchors)),
        "match_radius_arcsec": radius_arcsec,
        "dr10_dec_range_deg": [dec_min, dec_max],
        "entries_per_reference": reference_counts(entries),
        "anchors_per_set": {s: int(anchors[f"set_{s}"].sum()) for s in SETS},
        "anchors_per_set_in_dr10": {s: int((anchors[f"set_{s}"] & anchors["in_dr10"]).sum()) for s in SETS},
    }
    return anchors, summary


def write_anchors(anchors: pd.DataFrame, out: str | Path) -> Path:
    """Write the anchor table as Parquet (pyarrow, no index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(anchors, preserve_index=False), out)
    return out


def read_anchors(path: str | Path) -> pd.DataFrame:
    """Anchor table written by :func:`write_anchors`."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataFileError("anchor table not found", path=str(path))
    df = pq.read_table(path).to_pandas()
    _check_columns(df, ("anchor_id", "name", "ra", "dec", "anchor_set"), path)
    return df
