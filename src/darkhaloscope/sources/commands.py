"""``darkhaloscope build-bank``: COSMOS catalog (or the procedural default) -> source bank HDF5.

    darkhaloscope build-bank --config configs/dr10.yaml --cosmos-dir <dir> --out bank.h5
    darkhaloscope build-bank --config configs/demo.yaml --out out/bank.h5     # procedural

The production catalog comes from ``galsim_download_cosmos -s 25.2`` (where the internet is
reachable); ``--catalog-file`` reads any GalSim RealGalaxyCatalog in ``--cosmos-dir``. ``--out``
may be an ``s3://`` URL (written locally, then uploaded).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from ..config import Config, load_config
from ..dataset.storage import StorageOptions, filesystem_for, is_s3
from ..errors import StorageError
from .bank import write_bank

log = logging.getLogger(__name__)


def build_bank(cfg: Config, out: str | Path, cosmos_dir: str | Path | None = None, catalog_file: str | None = None) -> dict:
    """Build the bank (COSMOS when ``cosmos_dir`` is given, else procedural) and write it to
    ``out`` (local path or ``s3://``). Returns the bank's attributes (kind, counts, ...)."""
    if cosmos_dir is not None:
        from .cosmos import build_cosmos_bank

        images, meta, attrs = build_cosmos_bank(cfg, cosmos_dir, catalog_file)
    else:
        if cfg.bank.kind == "cosmos":
            log.warning("bank.kind is 'cosmos' but no --cosmos-dir was given: building the procedural bank")
        from .procedural import build_procedural_bank

        images, meta, attrs = build_procedural_bank(cfg)
    out = str(out)
    if not is_s3(out):
        write_bank(out, images, meta, attrs)
        return attrs
    with tempfile.TemporaryDirectory() as tmp:
        local = write_bank(os.path.join(tmp, "bank.h5"), images, meta, attrs)
        fs, key = filesystem_for(out, StorageOptions(endpoint=cfg.generate.s3_endpoint, region=cfg.generate.s3_region))
        try:
            with open(local, "rb") as src, fs.open_output_stream(key) as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
        except OSError as exc:
            raise StorageError(f"cannot upload the source bank to {out}: {exc}", path=out) from None
    return attrs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (sections bank, bank.procedural, tasks.split_fractions)")
    parser.add_argument("--cosmos-dir", default=None, help="folder of a GalSim real-galaxy catalog (galsim_download_cosmos -s 25.2); omit for the procedural bank")
    parser.add_argument("--catalog-file", default=None, help="catalog file name inside --cosmos-dir (default: bank.catalog_file)")
    parser.add_argument("--out", default=None, help="output HDF5 path or s3:// URL (default: paths.bank)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    out = args.out or cfg.paths.bank
    attrs = build_bank(cfg, out, args.cosmos_dir, args.catalog_file)
    print(json.dumps({"out": str(out), "kind": attrs["kind"], "counts": attrs["counts"], "config_hash": attrs["config_hash"]}, sort_keys=True))
    return 0
