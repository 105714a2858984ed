"""``darkhaloscope <verb>``: one command per arrow of the flow (DESIGN 1).

Each verb lives in the module that owns its stage; that module exposes
``add_arguments(parser)`` and ``main(args) -> int``. This file is only the table, so adding a
verb never touches another stage's code, and importing the CLI stays fast (modules load lazily).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ._version import code_version
from .errors import DarkHaloScopeError
from .spark.worker_memory import set_worker_env

# verb -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build-survey": ("darkhaloscope.survey.commands_build_survey", "write a small synthetic sky in the DR10 file layout"),
    "build-tasks": ("darkhaloscope.survey.commands_build_tasks", "select LRGs from sweep/tractor catalogs and write the task table"),
    "positions": ("darkhaloscope.commands_positions", "known lenses or impostors from a catalogue -> a position table for stage (split by sky region)"),
    "stage": ("darkhaloscope.spark.stage", "run the Spark job: positions + bricks -> host table (real cutouts, read once)"),
    "build-bank": ("darkhaloscope.sources.commands", "build the source bank (COSMOS or the procedural default)"),
    "generate": ("darkhaloscope.spark.commands", "run the Spark job: host table (or tasks + bricks) + bank -> stamp dataset"),
    "report": ("darkhaloscope.report.commands", "dataset quality tables, figures and gates"),
    "train": ("darkhaloscope.ml.commands_train", "train the ConvNeXt-Tiny lens finder"),
    "evaluate": ("darkhaloscope.ml.commands_evaluate", "evaluate a run on a split and on real-lens anchors"),
    "anchors": ("darkhaloscope.ml.commands_anchors", "build known-lens anchor sets and their cutouts"),
    "emr": ("darkhaloscope.emr.commands", "plan, package and launch runs on AWS EMR"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darkhaloscope", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=code_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, (_module, help_text) in COMMANDS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    # Parse only the verb here; the verb's own module parses the rest.
    verb_index = next((i for i, a in enumerate(argv) if a in COMMANDS), None)
    if verb_index is None:
        args = top.parse_args(argv)
        top.print_help()
        return 2
    head, verb, rest = argv[:verb_index], argv[verb_index], argv[verb_index + 1 :]
    top_args = top.parse_args(head)
    logging.basicConfig(
        level=logging.DEBUG if top_args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    set_worker_env()  # before the verb's module imports pyarrow (spark/worker_memory.py)
    module = importlib.import_module(COMMANDS[verb][0])
    parser = argparse.ArgumentParser(prog=f"darkhaloscope {verb}", description=COMMANDS[verb][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except DarkHaloScopeError as exc:
        print(f"darkhaloscope {verb}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
