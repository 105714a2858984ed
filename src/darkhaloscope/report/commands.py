"""``darkhaloscope report``: quality tables, figures and gates of a stamp dataset.

    darkhaloscope report --dataset out/dataset/demo --bank out/bank.h5
    darkhaloscope report --dataset s3://bucket/ds --config configs/dr10.yaml --out s3://bucket/ds-report

Writes report.md, report.json and figures/*.png to ``--out`` (default ``<dataset>/_report``,
which dataset readers ignore). Exits 1 naming every failing gate and its figure unless
``--no-fail``; a skipped gate (no bank, no arcs) does not fail the command.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import Config, load_config
from ..dataset.storage import StorageOptions, join
from ..errors import GateFailure

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset root holding split=<split>/part-*.parquet (local path or s3://)")
    parser.add_argument("--bank", default=None, help="source bank (HDF5, local or s3://) for the re-render gate; without it that gate is skipped")
    parser.add_argument("--config", default=None, help="YAML config (thresholds in section 'report'); default: the config stored in the dataset's _manifest.json")
    parser.add_argument("--out", default=None, help="output folder (local or s3://); default <dataset>/_report")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a gate fails")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures (tables and gates only)")
    parser.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL (default: the config's generate.s3_endpoint, else AWS)")
    parser.add_argument("--s3-region", default=None, help="S3 region (default: the config's generate.s3_region)")


def _options(args: argparse.Namespace, cfg: Config | None) -> StorageOptions:
    endpoint = args.s3_endpoint if args.s3_endpoint is not None else (cfg.generate.s3_endpoint if cfg else "")
    region = args.s3_region or (cfg.generate.s3_region if cfg else "us-east-1")
    return StorageOptions(endpoint=endpoint, region=region)


def main(args: argparse.Namespace) -> int:
    from .build import build_report, write_report
    from .source import config_from_manifest, read_manifest_if_any

    cfg = load_config(args.config) if args.config else None
    options = _options(args, cfg)
    if cfg is None:
        cfg = config_from_manifest(read_manifest_if_any(args.dataset, options), args.dataset)
    bank = None
    if args.bank:
        from ..sources.bank import SourceBank

        storage = {"endpoint_override": options.endpoint, "region": options.region} if options.endpoint else {"region": options.region}
        bank = SourceBank.open(args.bank, cache_dir=cfg.paths.cache_dir or None, **storage)
    result = build_report(args.dataset, cfg, bank=bank, options=options, make_figures=not args.no_figures, config_source="given" if args.config else "manifest")
    out = args.out or join(args.dataset, "_report")
    urls = write_report(result, out, options)
    for name, g in result.data["gates"].items():
        print(f"{g['status'].upper():8s} {name}: {g['message']}")
    for w in result.data["warnings"]:
        print(f"WARNING  {w}")
    print(f"report: {urls['md']}")
    failed = result.failed
    if failed and not args.no_fail:
        for g in failed:
            print(f"darkhaloscope report: gate {g.name} FAILED (figure {join(out, 'figures', g.figure)}): {g.message}", file=sys.stderr)
        first = failed[0]
        raise GateFailure(f"{len(failed)} gate(s) failed: {', '.join(g.name for g in failed)}", gate=first.name, figure=join(out, "figures", first.figure), threshold=first.threshold)
    return 0
