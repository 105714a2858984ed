"""``darkhaloscope stage``: positions + survey -> host table (real cutouts, read once).

    darkhaloscope stage --config configs/demo.yaml --tasks out/tasks --bricks out/survey --out out/hosts
    darkhaloscope generate --config configs/demo.yaml --hosts out/hosts/hosts --bank out/bank.h5 --out out/dataset

For every row of a position table (the LRG task table, an anchor table, impostors, random sky
positions: columns ``task_id, galaxy_id, brickname, ra, dec, split, role`` at least, any role)
the grz stamp is cut from the bricks (a local folder, ``s3://`` or the portal's ``https://``
layout; over https only the compressed tiles the stamp needs, see ``survey/http.py``) and
written to ``<out>/<stage.name>/split=<split>/part-NNNNN.parquet`` with every column of the
position table (``dataset/host_schema.py``). The same job machinery as ``generate``
(``spark/job.py``, ``spark/partition.py``): brick-hash partitions, deterministic shards, footer
checks, ``_manifest.json`` (with ``host_hash``) then ``_SUCCESS``, ``--resume``.
``spark-submit jobs/stage.py`` takes the same arguments.
"""

from __future__ import annotations

import argparse
import json

from ..config import Config
from ..dataset.storage import StorageOptions, join
from ..errors import redact
from . import commands as gen


def run(spark, cfg: Config, tasks: str, bricks: str, out: str, resume: bool = False, options: StorageOptions | None = None, *, task_fn=None) -> dict:
    """Stage ``tasks`` from ``bricks`` into ``<out>/<stage.name>`` on ``spark``; the run summary
    (rows, shards, ``survey_bytes_per_stamp``: brick bytes read per stamp made, ...)."""
    from .job import run as run_job

    return run_job(spark, cfg, tasks, bricks, "", out, resume, options, task_fn=task_fn, kind="stage")


def run_multiprocessing(cfg: Config, tasks: str, bricks: str, out: str, resume: bool = False, options: StorageOptions | None = None,
                        processes: int | None = None, *, task_fn=None) -> dict:
    """The stage job in a local process pool (same partitions and bytes as :func:`run`)."""
    from .job import run_multiprocessing as run_job

    return run_job(cfg, tasks, bricks, "", out, resume, options, processes, task_fn=task_fn, kind="stage")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config (default: %(default)s)")
    parser.add_argument("--tasks", help="position table folder or file: tasks, anchors, impostors (default: config paths.tasks)")
    parser.add_argument("--bricks", help="survey root holding coadd/: folder, s3:// or https:// (default: config paths.survey_root)")
    parser.add_argument("--out", help="host table root; the table goes to <out>/<stage.name> (default: config paths.hosts)")
    gen.add_run_arguments(parser, "host hash")


def run_from_args(args: argparse.Namespace, spark=None) -> dict:
    """Run the stage job the arguments describe (a Spark session is built unless given)."""
    args.bank = args.hosts = None
    if not args.out:
        from ..config import load_config

        args.out = load_config(args.config).paths.hosts
    cfg, paths, options = gen.resolve(args)
    fields = {k: gen.INPUT_FIELDS[k] for k in ("tasks", "bricks")}
    gen.check_inputs(paths, options, fields)
    if args.runner == "multiprocessing":
        return run_multiprocessing(cfg, paths["tasks"], paths["bricks"], paths["out"], args.resume, options, args.processes)
    from .session import get_spark
    from .tasks_input import check_task_files, list_task_files

    check_task_files(list_task_files(paths["tasks"], options), options)  # before a Spark session starts
    spark = spark or get_spark("darkhaloscope-stage", gen.default_master(args.master))
    return run(spark, cfg, paths["tasks"], paths["bricks"], paths["out"], args.resume, options)


def report(summary: dict, paths: dict) -> str:
    """Where the host table is and what it cost (rows, bytes per stamp, survey bytes read)."""
    rows = summary["rows"]
    return "\n".join([
        "",
        "darkhaloscope stage: done",
        f"  survey (bricks) : {redact(paths['bricks'])}",
        f"  positions       : {redact(paths['tasks'])}",
        f"  host table      : {redact(summary['dataset'])}  (split=<train|val|test>/part-NNNNN.parquet)",
        f"  manifest        : {redact(summary['manifest'])}  and {redact(join(summary['dataset'], '_SUCCESS'))}",
        f"  rows {rows} in {summary['shards']} shards ({summary['shards_written']} written, {summary['shards_kept']} kept by --resume), "
        f"{summary['bytes'] / 1e6:.1f} MB, {summary['bytes_per_row'] / 1024:.1f} KB/row, {summary['n_not_ok']} rows cutout_ok=false, "
        f"{summary['n_failed']} raised, {summary['seconds']:.1f} s ({summary['runner']})",
        f"  survey bytes read: {summary['survey_bytes'] / 1e6:.1f} MB, {summary['survey_bytes_per_stamp'] / 1024:.1f} KB per stamp made",
        "",
        "  read it:  from darkhaloscope.dataset.hosts import read_host_rows, cutout_from_host_row",
        f"            t = read_host_rows({summary['dataset']!r}, 'train', columns=['task_id', 'ra', 'dec', 'cutout_ok'])",
        f"  use it:   darkhaloscope generate --hosts {summary['dataset']} --bank BANK --out OUT",
    ])


def main(args: argparse.Namespace) -> int:
    summary = run_from_args(args)
    _, paths, _ = gen.resolve(args)
    print(report(summary, paths), flush=True)
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    return 0
