"""``darkhaloscope anchors build|cutouts``: known-lens anchor sets and their stamps.

    darkhaloscope anchors build --out anchors.parquet [--catalog FILE ...]
    darkhaloscope anchors cutouts --anchors anchors.parquet --out OUT [--bricks ROOT | --service URL]

``build`` without ``--catalog`` reads lenscat + the Stein 2021 tables under the shared data
folder (``$DARKHALOSCOPE_SHARED_DATA`` or ``../shared/data`` next to the repository).
``cutouts`` is the stage job over the anchor table (``ml/anchor_stamps.py``): it writes the host
table ``OUT/anchor_stamps`` (read by ``evaluate --anchors OUT/anchor_stamps``), the position
table ``OUT/anchor_positions.parquet`` and ``OUT/anchor_stamps.summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import CatalogError


def _shared_data() -> Path:
    env = os.environ.get("DARKHALOSCOPE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="build|cutouts")
    b = sub.add_parser("build", help="merge known-lens catalogs into anchor sets (Parquet)")
    b.add_argument("--out", required=True, help="output Parquet file")
    b.add_argument("--catalog", action="append", default=[], help="lenscat CSV, Stein TSV or CSV with ra,dec,name,grade,reference (repeatable)")
    b.add_argument("--match-radius", type=float, default=2.0, help="merge entries closer than this [arcsec] (default 2)")
    b.add_argument("--dec-min", type=float, default=-90.0, help="DR10 footprint: minimum Dec [deg]")
    b.add_argument("--dec-max", type=float, default=32.375, help="DR10 footprint: maximum Dec [deg] (DECam south limit)")

    c = sub.add_parser("cutouts", help="64x64 grz stamps of anchors from bricks or the cutout service")
    c.add_argument("--anchors", required=True, help="anchor Parquet from `anchors build`")
    c.add_argument("--out", required=True, help="output folder: the host table goes to OUT/anchor_stamps")
    c.add_argument("--bricks", help="DR10 survey root (local, s3:// or https://): the training stamps' code")
    c.add_argument("--service", help="cutout service base URL, e.g. https://www.legacysurvey.org/viewer")
    c.add_argument("--layer", default="ls-dr10", help="service layer (default ls-dr10)")
    c.add_argument("--sets", default="ground,slacs_bells", help="comma list of anchor sets to cut (default ground,slacs_bells; 'all')")
    c.add_argument("--all-dec", action="store_true", help="also anchors outside the DR10 declination range")
    c.add_argument("--limit", type=int, default=0, help="at most this many anchors (0 = all)")
    c.add_argument("--size", type=int, default=64, help="stamp side [pixels]")
    c.add_argument("--bands", default="grz", help="bands (default grz)")
    c.add_argument("--cache-dir", default="", help="service response cache (default ~/.cache/darkhaloscope/cutouts)")
    c.add_argument("--timeout", type=float, default=30.0, help="service timeout per request [s]")
    c.add_argument("--retries", type=int, default=4, help="service retries after the first attempt")
    c.add_argument("--s3-endpoint", default="", help="S3 endpoint override for --bricks s3://")


def _build(args) -> int:
    from .anchors import build_anchors, default_catalogs, write_anchors

    cats = args.catalog or default_catalogs(_shared_data())
    table, summary = build_anchors(cats, args.match_radius, args.dec_min, args.dec_max)
    out = write_anchors(table, args.out)
    Path(str(out) + ".summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"out": str(out), "n_anchors": summary["n_anchors"], "anchors_per_set": summary["anchors_per_set"],
                      "anchors_per_set_in_dr10": summary["anchors_per_set_in_dr10"]}))
    return 0


def _cutouts(args) -> int:
    from ..dataset.hosts import read_host_rows
    from ..dataset.storage import StorageOptions
    from ..survey.cutout_service import ServiceOptions
    from .anchor_stamps import stage_anchors
    from .anchors import SETS, read_anchors

    if not args.bricks and not args.service:
        raise CatalogError("give --bricks ROOT or --service URL (or both: bricks first, service as fallback)")
    df = read_anchors(args.anchors)
    sets = SETS if args.sets == "all" else tuple(s.strip() for s in args.sets.split(",") if s.strip())
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise CatalogError(f"unknown anchor set(s) {unknown}; choose from {SETS}", field="sets")
    keep = df[[f"set_{s}" for s in sets]].any(axis=1)
    if not args.all_dec:
        keep &= df["in_dr10"]
    df = df[keep].reset_index(drop=True)
    if args.limit:
        df = df.head(args.limit)
    if df.empty:
        raise CatalogError(f"no anchors of set(s) {list(sets)}{'' if args.all_dec else ' inside the DR10 footprint'} in {args.anchors} "
                           "(see its .summary.json for the counts per set; --sets all or --all-dec widen the selection)",
                           path=str(args.anchors), field="sets")
    service = None
    if args.service:
        cache = args.cache_dir or str(Path.home() / ".cache" / "darkhaloscope" / "cutouts")
        service = ServiceOptions(base_url=args.service, layer=args.layer, timeout=args.timeout, retries=args.retries, cache_dir=cache)
    if str(args.out).endswith(".parquet"):
        raise CatalogError(f"--out {args.out}: anchors cutouts writes a host table folder (OUT/anchor_stamps), not one .parquet file", field="out")
    run = stage_anchors(df, str(args.out), bricks_root=args.bricks, service_options=service, size=args.size, bands=args.bands,
                        storage_options=StorageOptions(endpoint=args.s3_endpoint))
    t = read_host_rows(run["dataset"], columns=["cutout_ok", "stamp_source", "metadata_source"]).to_pandas()
    summary = {"out": run["dataset"], "n": len(t), "n_ok": int(t["cutout_ok"].sum()),
               "by_source": {str(k): int(v) for k, v in t.loc[t["cutout_ok"], "stamp_source"].value_counts().items()},
               "metadata_source": {str(k): int(v) for k, v in t["metadata_source"].value_counts().items()}}
    Path(args.out, "anchor_stamps.summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


def main(args: argparse.Namespace) -> int:
    return _build(args) if args.action == "build" else _cutouts(args)
