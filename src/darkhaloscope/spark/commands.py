"""``darkhaloscope generate``: tasks + bricks + bank -> stamp dataset (Spark, or a process pool).

    darkhaloscope generate --config configs/demo.yaml --tasks out/tasks --bricks out/survey \\
        --bank out/bank.h5 --out out/dataset [--resume] [--master local[2]] [--s3-endpoint URL]
    darkhaloscope generate --config configs/demo.yaml --hosts out/hosts/hosts --bank out/bank.h5 --out out/dataset

``--hosts`` takes the tasks and their stamps from a host table (``darkhaloscope stage``) and
never reads the survey: the rows are byte for byte those of ``--tasks/--bricks``.

Each input and the output may be a local path or an ``s3://`` URL; missing ones default to the
config's ``paths`` section. ``spark-submit jobs/generate.py`` takes the same arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..config import Config, load_config, replace
from ..dataset.storage import StorageOptions, join
from ..errors import redact

log = logging.getLogger("darkhaloscope.generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config (default: %(default)s)")
    parser.add_argument("--tasks", help="task table folder or file (default: config paths.tasks)")
    parser.add_argument("--bricks", help="survey root holding coadd/ (default: config paths.survey_root)")
    parser.add_argument("--hosts", default=None, help="host table made by `darkhaloscope stage` (<out>/<stage.name>): tasks and stamps from it, no survey read")
    parser.add_argument("--bank", help="source bank HDF5 (default: config paths.bank)")
    parser.add_argument("--out", help="dataset root; the dataset goes to <out>/<generate.dataset_name> (default: config paths.dataset)")
    add_run_arguments(parser, "config hash")


def add_run_arguments(parser: argparse.ArgumentParser, footer_key: str) -> None:
    """The execution arguments every Spark job verb shares (generate, stage): resume, where and
    how it runs, the S3 endpoint, the summary file. ``footer_key``: what --resume checks in a footer."""
    parser.add_argument("--resume", action="store_true", help=f"keep shards whose footer row count and {footer_key} already match")
    parser.add_argument("--master", default=None, help="Spark master, e.g. local[2] (default: the cluster's under spark-submit, else local[*])")
    parser.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL (tests, S3-compatible stores; default: config generate.s3_endpoint)")
    parser.add_argument("--partitions", type=int, default=None, help="override generate.n_partitions")
    parser.add_argument("--runner", choices=("spark", "multiprocessing"), default="spark", help="run on Spark (default) or a local process pool")
    parser.add_argument("--processes", type=int, default=None, help="pool size for --runner multiprocessing (default: cores)")
    parser.add_argument("--summary-json", default=None, help="also write the run summary as JSON to this local file")


def resolve(args: argparse.Namespace) -> tuple[Config, dict, StorageOptions]:
    """(config, {tasks, bricks, bank, out}, storage options) from arguments and config defaults."""
    cfg = load_config(args.config)
    if args.partitions:
        cfg = replace(cfg, **{"generate.n_partitions": args.partitions})
    paths = {
        "tasks": args.tasks or cfg.paths.tasks,
        "bricks": args.bricks or cfg.paths.survey_root,
        "bank": args.bank or cfg.paths.bank,
        "out": args.out or cfg.paths.dataset,
        "hosts": getattr(args, "hosts", None) or "",
    }
    options = StorageOptions(endpoint=args.s3_endpoint if args.s3_endpoint is not None else cfg.generate.s3_endpoint,
                             region=cfg.generate.s3_region)
    return cfg, paths, options


INPUT_FIELDS = {"tasks": ("paths.tasks", "task table"), "bricks": ("paths.survey_root", "survey root"), "bank": ("paths.bank", "source bank")}


def check_inputs(paths: dict, options: StorageOptions, fields: dict | None = None) -> None:
    """Every input is given and exists, else a ConfigError naming ``--<input>`` and its config
    field, before any Spark work (https survey mirrors are not probed)."""
    from pyarrow import fs as pafs

    from ..dataset.storage import filesystem_for
    from ..errors import ConfigError, StorageError

    if fields is None:
        fields = {"hosts": ("--hosts", "host table"), "bank": INPUT_FIELDS["bank"]} if paths.get("hosts") else INPUT_FIELDS
    for key, (field, label) in fields.items():
        url = paths[key]
        if not url:
            raise ConfigError(f"no {label} given: pass --{key} or set config field '{field}'", field=field)
        if str(url).startswith(("http://", "https://")):
            continue
        fs, path = filesystem_for(url, options)
        try:
            missing = fs.get_file_info(path).type == pafs.FileType.NotFound
        except OSError as exc:
            raise StorageError(f"cannot reach the {label} {redact(url)} (--{key} / config field '{field}'): {redact(str(exc))}", path=redact(url), field=field) from None
        if missing:
            raise ConfigError(f"{label} not found: {redact(url)} (--{key} / config field '{field}')", field=field, path=redact(url))


def default_master(master: str | None) -> str | None:
    """``master`` if given; None under spark-submit (keep the cluster's); else ``local[*]``."""
    if master:
        return master
    return None if os.environ.get("PYSPARK_GATEWAY_PORT") else "local[*]"


def run_from_args(args: argparse.Namespace, spark=None) -> dict:
    """Run the job the arguments describe (building a Spark session unless one is given)."""
    cfg, paths, options = resolve(args)
    check_inputs(paths, options)
    hosts = paths["hosts"]
    if args.runner == "multiprocessing":
        from .job import run_multiprocessing

        return run_multiprocessing(cfg, paths["tasks"], paths["bricks"], paths["bank"], paths["out"], args.resume, options, args.processes, hosts=hosts)
    from .job import check_host_table, run
    from .session import get_spark
    from .tasks_input import check_task_files, list_task_files

    # bad inputs fail here, naming the file or column, before a Spark session starts
    check_task_files(list_task_files(hosts or paths["tasks"], options), options)
    if hosts:
        check_host_table(hosts, cfg, options)
    spark = spark or get_spark("darkhaloscope-generate", default_master(args.master))
    return run(spark, cfg, paths["tasks"], paths["bricks"], paths["bank"], paths["out"], args.resume, options, hosts=hosts)


def report(summary: dict, paths: dict, options: StorageOptions) -> str:
    """Where everything is, and the dataset's short summary (rows, roles, arc_snr quartiles)."""
    from ..dataset.summary import format_summary, summarize

    lines = [
        "",
        "darkhaloscope generate: done",
        *([f"  host table      : {redact(paths['hosts'])}  (no survey read)"] if paths.get("hosts") else
          [f"  survey (bricks) : {redact(paths['bricks'])}", f"  task table      : {redact(paths['tasks'])}"]),
        f"  source bank     : {redact(paths['bank'])}",
        f"  dataset         : {redact(summary['dataset'])}  (split=<train|val|test>/part-NNNNN.parquet)",
        f"  manifest        : {redact(summary['manifest'])}  and {redact(join(summary['dataset'], '_SUCCESS'))}",
        f"  rows {summary['rows']} in {summary['shards']} shards ({summary['shards_written']} written, {summary['shards_kept']} kept by --resume), "
        f"{summary['bytes'] / 1e6:.1f} MB, {summary['bytes_per_row'] / 1024:.1f} KB/row, "
        f"{summary['n_failed']} tasks raised, {summary['n_not_ok']} rows cutout_ok=false, {summary['seconds']:.1f} s ({summary['runner']})",
        "",
        format_summary(summarize(summary["dataset"], options)),
        "",
        "  read it:  from darkhaloscope.dataset.reader import read_split; from darkhaloscope.dataset.stamp import decode_stamp",
        f"            t = read_split({summary['dataset']!r}, 'train', columns=['task_id', 'role', 'arc_snr', 'stamp_npz'])",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    _, paths, options = resolve(args)
    summary = run_from_args(args)
    print(report(summary, paths, options), flush=True)
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    return 0
