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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CatalogError, DataFileError

MATCH_RADIUS_ARCSEC = 2.0
DEC_MIN_DR10 = -90.0
DEC_MAX_DR10 = 32.375  # DR10 south (DECam) limit, legacysurvey.org/dr10/description

SET_GROUND = "ground"  # primary: discovered in DECam (DES / DECaLS / DR8-DR9) imaging
SET_SLACS_BELLS = "slacs_bells"
SET_GROUND_OTHER = "ground_other"
SET_OTHER = "other"
SETS = (SET_GROUND, SET_SLACS_BELLS, SET_GROUND_OTHER, SET_OTHER)


@dataclass(frozen=True)
class Reference:
    """One discovery paper: ``key`` (short id), ``label`` (Author year), ``anchor_set``,
    ``ids`` (arXiv ids, DOIs, bibcodes or literal words as they appear in lenscat's ``ref``)."""

    key: str
    label: str
    anchor_set: str
    ids: tuple[str, ...]


# Identified from lenscat's ref column and its README (the bare-URL rows are its SuGOHI import).
REFERENCES: tuple[Reference, ...] = (
    # primary: DECam ground-based imaging searches
    Reference("huang2020", "Huang et al. 2020 (DECaLS)", SET_GROUND, ("1906.00970",)),
    Reference("huang2021", "Huang et al. 2021 (DESI LS DR8)", SET_GROUND, ("2005.04730",)),
    Reference("storfer2022", "Storfer et al. 2022 (DESI LS DR9)", SET_GROUND, ("2206.02764",)),
    Reference("stein2021", "Stein et al. 2021 (DESI LS DR9, self-supervised)", SET_GROUND, ("2110.00023",)),
    Reference("jacobs2019", "Jacobs et al. 2019 (DES, CNN)", SET_GROUND, ("1811.03786", "10.3847/1538-4365/ab26b6")),
    Reference("rojas2021", "Rojas et al. 2021 (DES, CNN)", SET_GROUND, ("2109.00014",)),
    Reference("zaborowski2022", "Zaborowski et al. 2022 (DES Y6, CNN)", SET_GROUND, ("2210.10802",)),
    Reference("agel2022", "Tran et al. 2022 (AGEL, DES/DECaLS)", SET_GROUND, ("2205.05307",)),
    Reference("odonnell2021", "O'Donnell et al. 2021 (DES Y3 arcs)", SET_GROUND, ("2110.02418",)),
    Reference("diehl2017", "Diehl et al. 2017 (DES Y1)", SET_GROUND, ("10.3847/1538-4365/aa8667",)),
    # spectroscopic selection + HST confirmation
    Reference("slacs", "SLACS (Bolton 2008, Auger 2009, Shu 2017)", SET_SLACS_BELLS,
              ("SLACS", "0805.1931", "0911.2471", "2019yCat..18510048S")),
    Reference("bells", "BELLS (Brownstein 2012) + BELLS GALLERY (Shu 2016)", SET_SLACS_BELLS,
              ("1112.3683", "1604.01842")),
    # other ground-based imaging searches (different depth / seeing from DR10)
    Reference("petrillo2018", "Petrillo et al. 2018 (KiDS)", SET_GROUND_OTHER, ("1812.03168",)),
    Reference("li2021", "Li et al. 2021 (KiDS)", SET_GROUND_OTHER, ("2110.01905",)),
    Reference("canameras2020", "Canameras et al. 2020 (Pan-STARRS)", SET_GROUND_OTHER, ("2004.13048",)),
    Reference("canameras2021", "Canameras et al. 2021 (HSC)", SET_GROUND_OTHER, ("2107.07829",)),
    Reference("shu2022", "Shu et al. 2022 (HSC)", SET_GROUND_OTHER, ("2201.11135",)),
    Reference("savary2021", "Savary et al. 2021 (UNIONS/CFIS)", SET_GROUND_OTHER, ("2110.11972",)),
    Reference("sugohi", "SuGOHI (HSC) candidate list", SET_GROUND_OTHER,
              ("1704.01585", "1809.07341", "1904.10465", "1905.10522", "1911.02587", "2002.01611",
               "2004.00634", "2006.16584", "2203.12805", "2312.07333",
               "SuGOHI Candidate List (2021) - www-utap.phys.s.u-tokyo.ac.jp/~oguri/sugohi/")),
    Reference("cfhtls", "CFHTLS searches (SL2S, RingFinder, Space Warps)", SET_GROUND_OTHER,
              ("1109.1821", "1403.1041", "1504.05587", "1307.4759", "1307.4764", "0610362",
               "10.1088/0004-637X/785/2/144")),
    # spectroscopic searches without arcs in ground imaging as the selection
    Reference("talbot", "Talbot et al. 2018-2022 (BOSS/eBOSS spectroscopic)", SET_OTHER,
              ("1803.03604", "2007.09006", "2206.09902")),
)
# Stein et al. 2021's list of previously known DR9 lenses (a literature compilation): its rows
# join the primary set only through a 2" match to a catalogued discovery.
STEIN_TRAINING = Reference("stein2021_known", "Stein et al. 2021 known-lens compilation (DR9)", SET_OTHER, ())

_ID_TO_REF: dict[str, Reference] = {i.lower(): r for r in REFERENCES for i in r.ids}
_ARXIV_NEW = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?")
_ARXIV_OLD = re.compile(r"(?:astro-ph/|arxiv:)(\d{7})", re.I)
_DOI = re.compile(r"(10\.\d{4,9}/[^\s#|]+)")
_BIBCODE = re.compile(r"(\d{4}[A-Za-z&.]{2,}[\w.&]*?\d+[A-Z])(?:/|\b)")
_AUTHOR_YEAR = re.compile(r"^([^()|]+?) et al\. \((\d{4})\)")
# Free-text citations in user CSVs ("Huang et al. 2020", "Jacobs et al. (2019)"): surname + year
# of a known paper's label, for catalogs that give no arXiv id, DOI or bibcode.
_CITATION = re.compile(r"^\s*([A-Za-z'\-]+)(?: et al\.?| and [A-Za-z'\-]+)?,?\s*\(?(\d{4})[a-z]?\)?")
_CITATION_TO_REF: dict[tuple[str, str], Reference] = {}
for _r in REFERENCES:
    _m = _CITATION.match(_r.label)
    if _m:
        _CITATION_TO_REF.setdefault((_m.group(1).lower(), _m.group(2)), _r)

_GRADE_RANK = {"A": 0, "confident": 0, "B": 1, "probable": 1, "C": 2}
_NORM_GRADE = {"a": "A", "confident": "A", "b": "B", "probable": "B", "c": "C"}


def _split_ref_tokens(ref: str) -> list[str]:
    """Individual citations of a lenscat ``ref`` cell ('A | B' and space-separated URLs)."""
    out: list[str] = []
    for part in str(ref).split(" | "):
        part = part.strip()
        if not part:
            continue
        if part.startswith("http") or " http" in part:
            out.extend(t for t in part.split() if t)
        else:
            out.append(part)
    return out


def _token_ids(token: str) -> list[str]:
    """Identifiers found in one citation token (arXiv ids, DOIs, bibcodes, the token itself)."""
    ids = [m.group(1) for m in _ARXIV_NEW.finditer(token)]
    ids += [m.group(1) for m in _ARXIV_OLD.finditer(token)]
    ids += [m.group(1).rstrip(".") for m in _DOI.finditer(token)]
    if "adsabs" in token:
        ids += [m.group(1) for m in _BIBCODE.finditer(token.split("/abs/")[-1])]
    ids.append(token.strip())
    return ids


def parse_references(ref: str) -> list[str]:
    """Reference keys of a ``ref`` cell, in order, without duplicates.

    Known papers map to their REFERENCES key (``"huang2021"``); an unknown 'Author et al.
    (year) - id' citation to ``"Author (year)"``; an unknown bare arXiv URL to ``"arXiv:<id>"``;
    anything else to its own text.
    """
    keys: list[str] = []
    for token in _split_ref_tokens(ref):
        ids = _token_ids(token)
        key = next((_ID_TO_REF[i.lower()].key for i in ids if i.lower() in _ID_TO_REF), None)
        if key is None:
            cited = _CITATION.match(token)
            known = _CITATION_TO_REF.get((cited.group(1).lower(), cited.group(2))) if cited else None
            key = known.key if known else None
        if key is None:
            m = _AUTHOR_YEAR.match(token)
            arxiv = [i for i in ids[:-1] if _ARXIV_NEW.fullmatch(i)]
            if m:
                key = f"{m.group(1)} ({m.group(2)})"
            elif arxiv:
                key = f"arXiv:{arxiv[0]}"
            else:
                key = token.strip()
        if key and key not in keys:
            keys.append(key)
    return keys


def reference_set(key: str) -> str:
    """Anchor set of one reference key (``other`` when unknown)."""
    for r in (*REFERENCES, STEIN_TRAINING):
        if r.key == key:
            return r.anchor_set
    return SET_OTHER


def _norm_grade(g) -> str:
    if g is None or (isinstance(g, float) and np.isnan(g)):
        return ""
    s = str(g).strip()
    return _NORM_GRADE.get(s.lower(), s)


def _clean_name(v) -> str:
    """First real name of a cell (lenscat joins aliases with ' | ' and uses '-' for none)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return next((p.strip() for p in str(v).split(" | ") if p.strip() not in ("", "-", "nan")), "")


def _float_or_nan(v) -> float:
    try:
        x = float(str(v).rstrip("?"))
        return x if np.isfinite(x) else np.nan
    except (TypeError, ValueError):
        return np.nan


# ---------------------------------------------------------------- readers -> entry table
ENTRY_COLUMNS = ("name", "ra", "dec", "grade", "references", "catalog", "lens_type", "z_lens", "theta_e", "forced_set")


def _check_columns(df: pd.DataFrame, needed: Iterable[str], path: Path) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise CatalogError(f"catalog lacks column(s) {missing}", path=str(path), field=",".join(missing))


def _check_coords(df: pd.DataFrame, path: Path) -> None:
    bad = ~(np.isfinite(df["ra"]) & np.isfinite(df["dec"]) & (df["dec"].abs() <= 90) & (df["ra"] >= -360) & (df["ra"] <= 720))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise CatalogError("ra/dec not finite or out of range", path=str(path), row=i, field="ra,dec")


def read_catalog(path: str | Path) -> pd.DataFrame:
    """Entries of one catalog file as a table with ENTRY_COLUMNS (one row per input row).

    Recognised formats: lenscat CSV, Stein et al. 2021 TSV (new lenses: graded, reference
    stein2021; known lenses: reference stein2021_known), and a generic CSV with
    ra, dec, name, grade, reference (+ optional theta_e, z_lens, lens_type, anchor_set).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("anchor catalog not found", path=str(path))
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        df = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(f"cannot parse anchor catalog: {exc}", path=str(path)) from None
    cols = set(df.columns)
    name = path.name
    if {"RA [deg]", "DEC [deg]", "ref", "grading"} <= cols:  # lenscat
        out = pd.DataFrame({
            "name": df["name"].map(_clean_name), "ra": pd.to_numeric(df["RA [deg]"], errors="coerce"),
            "dec": pd.to_numeric(df["DEC [deg]"], errors="coerce"), "grade": df["grading"].map(_norm_grade),
            "references": df["ref"].fillna("").map(parse_references), "lens_type": df["type"].fillna("").astype(str),
            "z_lens": df["zlens"].map(_float_or_nan), "theta_e": np.nan,
        })
    elif {"ra", "dec", "inds"} <= cols:  # Stein et al. 2021
        graded = "grade" in cols
        ref = "stein2021" if graded else STEIN_TRAINING.key
        z = pd.to_numeric(df.get("z_spec"), errors="coerce").where(lambda s: s > 0)
        out = pd.DataFrame({
            "name": [f"{'Stein21' if graded else 'Stein21known'}_{i}" for i in df["inds"]],
            "ra": pd.to_numeric(df["ra"], errors="coerce"), "dec": pd.to_numeric(df["dec"], errors="coerce"),
            "grade": df["grade"].map(_norm_grade) if graded else "",
            "references": [[ref] for _ in range(len(df))], "lens_type": "galaxy", "z_lens": z, "theta_e": np.nan,
        })
    else:  # generic
        _check_columns(df, ("ra", "dec", "name", "grade", "reference"), path)
        out = pd.DataFrame({
            "name": df["name"].map(_clean_name), "ra": pd.to_numeric(df["ra"], errors="coerce"),
            "dec": pd.to_numeric(df["dec"], errors="coerce"), "grade": df["grade"].map(_norm_grade),
            "references": df["reference"].fillna("").map(parse_references),
            "lens_type": df["lens_type"].fillna("").astype(str) if "lens_type" in cols else "galaxy",
            "z_lens": pd.to_numeric(df["z_lens"], errors="coerce") if "z_lens" in cols else np.nan,
            "theta_e": pd.to_numeric(df["theta_e"], errors="coerce") if "theta_e" in cols else np.nan,
        })
        if "anchor_set" in cols:
            forced = df["anchor_set"].fillna("").astype(str)
            unknown = sorted(set(forced) - set(SETS) - {""})
            if unknown:
                raise CatalogError(f"unknown anchor_set value(s) {unknown}; use one of {SETS}", path=str(path), field="anchor_set")
            out["forced_set"] = forced
    if "forced_set" not in out:
        out["forced_set"] = ""
    _check_coords(out, path)
    out["ra"] = out["ra"] % 360.0
    out["catalog"] = name
    return out[list(ENTRY_COLUMNS)].reset_index(drop=True)


def reference_counts(entries: pd.DataFrame) -> dict[str, int]:
    """Number of catalog rows citing each reference key (before merging)."""
    counts: dict[str, int] = {}
    for refs in entries["references"]:
        for k in refs:
            counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


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
