"""``darkhaloscope emr plan|package|launch`` (also ``python -m darkhaloscope.emr ...``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import Config, load_config
from ..errors import ConfigError

DEFAULT_CONFIG = "configs/emr-dr10.yaml"
DEFAULT_BENCH = "out/bench/results.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands plan, package and launch."""
    sub = parser.add_subparsers(dest="emr_command", metavar="<plan|package|launch>", required=True)

    p = sub.add_parser("plan", help="size a run: partitions, executors, wall time, cost")
    p.add_argument("--tasks", type=int, required=True, help="number of stamps (task rows)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config YAML (default {DEFAULT_CONFIG})")
    p.add_argument("--bench", default=DEFAULT_BENCH, help=f"make bench results (default {DEFAULT_BENCH}; absent = seeds' figures)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")

    k = sub.add_parser("package", help="build the venv-pack environment and upload it with the code and config")
    k.add_argument("--config", default=DEFAULT_CONFIG)
    k.add_argument("--dry-run", action="store_true", help="list what would be built and uploaded; do nothing")
    k.add_argument("--env-archive", type=Path, help="upload this prebuilt env.tar.gz instead of building one")
    k.add_argument("--skip-env", action="store_true", help="do not build or upload the environment")
    k.add_argument("--build-dir", type=Path, help="where the venv and archive are built (default build/emr)")
    k.add_argument("--requirements-out", type=Path, help="also write the pinned requirements here (for emr/serverless/Dockerfile)")
    k.add_argument("--s3-endpoint", default="", help=argparse.SUPPRESS)
    k.add_argument("--repo", type=Path, default=None, help="project checkout to package (default: this one)")

    la = sub.add_parser("launch", help="run build-tasks, generate, report on EMR and wait")
    la.add_argument("--config", default=DEFAULT_CONFIG)
    la.add_argument("--dry-run", action="store_true", help="print every request; send nothing")
    la.add_argument("--mode", choices=("ec2", "serverless"), help="override emr.mode")
    la.add_argument("--no-wait", action="store_true", help="return after submitting")
    la.add_argument("--s3-endpoint", default="", help=argparse.SUPPRESS)
    la.add_argument("--repo", type=Path, default=None, help="project checkout whose code was packaged (default: this one)")


def _config(args) -> Config:
    path = Path(args.config)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", field="<file>", path=str(path))
    overrides = {"emr.mode": args.mode} if getattr(args, "mode", None) else None
    return load_config(path, overrides)


def main(args: argparse.Namespace) -> int:
    """Run one sub-command; returns the exit code."""
    cfg = _config(args)
    if args.emr_command == "plan":
        from .sizing import (
            format_plan,
            format_stage_plan,
            plan_as_dict,
            plan_run,
            plan_stage,
            read_bench,
        )

        bench = read_bench(args.bench)
        plan = plan_run(cfg, args.tasks, bench, bench_path=str(args.bench))
        stage = plan_stage(cfg, args.tasks, bench, bench_path=str(args.bench)) if "stage" in cfg.emr.steps else None
        if args.json:
            print(json.dumps(plan_as_dict(plan, stage), indent=2))
        else:
            print(format_plan(plan, cfg) + ("\n" + format_stage_plan(stage, plan) if stage else ""))
        return 0
    if args.emr_command == "package":
        from . import package as pkg

        s3 = None
        if not args.dry_run:
            from .launch import make_clients

            s3 = make_clients(cfg, args.s3_endpoint).s3
        plan = pkg.package(cfg, s3=s3, dry_run=args.dry_run, env_archive=args.env_archive,
                           skip_env=args.skip_env, build_dir=args.build_dir, repo=args.repo or pkg.REPO_ROOT)
        if args.requirements_out:
            args.requirements_out.write_text("\n".join(plan.requirements) + "\n")
        return 0
    if args.emr_command == "launch":
        from .launch import launch, make_clients
        from .package import REPO_ROOT

        clients = None if args.dry_run else make_clients(cfg, args.s3_endpoint)
        launch(cfg, clients, dry_run=args.dry_run, wait=not args.no_wait, repo=args.repo or REPO_ROOT)
        return 0
    raise ConfigError(f"unknown emr sub-command {args.emr_command!r}", field="emr_command")
