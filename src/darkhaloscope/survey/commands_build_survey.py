"""``darkhaloscope build-survey``: write the synthetic sky in the DR10 file layout."""

from __future__ import annotations

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config (survey.synthetic section)")
    parser.add_argument("--out", default=None, help="output root (default: paths.survey_root)")


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .build_survey import build_survey

    cfg = load_config(args.config)
    t0 = time.perf_counter()
    summary = build_survey(cfg, args.out or cfg.paths.survey_root)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(summary))
    return 0
