"""Readers of known-lens catalog files into one entry table (one row per input row, before merging).

Formats: lenscat's ``catalog.csv``, the Stein et al. 2021 TSVs, and a generic CSV (see
:func:`read_catalog`). Coordinates in degrees (RA wrapped to [0, 360)), z_lens unitless,
theta_e in arcsec; references parsed by :func:`.anchor_references.parse_references`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CatalogError, DataFileError
from .anchor_references import SETS, STEIN_TRAINING, parse_references

_NORM_GRADE = {"a": "A", "confident": "A", "b": "B", "probable": "B", "c": "C"}


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
