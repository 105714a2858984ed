"""``darkhaloscope positions``: a catalogue of known lenses or impostors -> a position table for
``stage`` (split by sky region, evaluation anchors kept out of training; regions.py).

    darkhaloscope positions --catalog lenses.csv --role known_lens --anchors out/anchors/anchors.parquet --out out/positions/known_lens
    darkhaloscope stage --tasks out/positions/known_lens --bricks ... --out out/hosts_kl
    darkhaloscope generate --hosts out/hosts_kl/hosts ...

The catalogue is any table astropy reads (CSV, FITS, Parquet, ECSV) with ``ra``, ``dec`` (deg)
and a unique ``name``, and the host's DR10 ``psfsize_g/r/z`` (arcsec), ``psfdepth_g/r/z`` and
``flux_g/r/z`` (nanomaggies) at the position where known (a sweep match): without PSF sizes a
stamp is ``cutout_ok = false``, the rule every role follows. Writes ``<out>/positions.parquet`` and ``<out>/splits.csv`` (name, ra,
dec, region_cell, split, split_reason: the split of every row, written down).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .config import load_config
from .errors import DataFileError
from .regions import PASS_THROUGH, REAL_ROLES, position_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/demo.yaml", help="config (tasks.region_* fields)")
    parser.add_argument("--catalog", required=True, help="table with ra, dec (deg) and name")
    parser.add_argument("--role", required=True, choices=REAL_ROLES, help="role of every row")
    parser.add_argument("--anchors", help="evaluation anchor table (Parquet from `darkhaloscope anchors`, or any table with ra, dec, name)")
    parser.add_argument("--out", required=True, help="output folder")


def _read(path: str, what: str) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    from astropy.table import Table

    if not Path(path).is_file():
        raise DataFileError(f"{what} not found", path=path)
    t = pq.read_table(path).to_pandas() if path.endswith(".parquet") else Table.read(path).to_pandas()
    missing = [c for c in ("ra", "dec", "name") if c not in t.columns]
    if missing:
        raise DataFileError(f"{what} lacks column(s) {missing} (needs ra, dec in degrees and name)", path=path, field=missing[0])
    extra = {c: t[c].to_numpy(float) for c in PASS_THROUGH if c in t.columns}
    return t["ra"].to_numpy(float), t["dec"].to_numpy(float), [str(n) for n in t["name"]], extra


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    ra, dec, names, extra = _read(args.catalog, "catalogue")
    a_ra, a_dec, a_names, _ = _read(args.anchors, "anchor table") if args.anchors else (np.empty(0), np.empty(0), [], {})
    table = position_table(ra, dec, names, args.role, cfg, a_ra, a_dec, a_names, extra=extra)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "positions.parquet")
    pacsv.write_csv(table.select(["name", "ra", "dec", "region_cell", "split", "split_reason"]), out / "splits.csv")
    counts = {s: table["split"].to_pylist().count(s) for s in ("train", "val", "test")}
    moved = sum(r.startswith("within") for r in table["split_reason"].to_pylist())
    print(f"positions: {table.num_rows} {args.role} rows {counts}, {moved} moved to test near evaluation anchors -> {out}/positions.parquet, {out}/splits.csv")
    return 0
