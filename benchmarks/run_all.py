"""Run every ``benchmarks/bench_*.py`` and merge their figures into ``<out>/results.json``.

Each benchmark module exposes ``run(cfg, out_dir) -> dict`` of flat, named medians measured in
this run. Nothing here asserts a time: figures are reported, not tested.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--only", nargs="*", help="run only these bench names (e.g. physics generate)")
    args = ap.parse_args(argv)
    from darkhaloscope.spark.worker_memory import set_worker_env

    set_worker_env()  # as the CLI does, before pyarrow loads (spark/worker_memory.py)
    from darkhaloscope.config import load_config

    cfg = load_config(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem[len("bench_"):]
        if args.only and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        figures = module.run(cfg, out)
        print(f"[bench] {name}: {json.dumps(figures, sort_keys=True)} ({time.perf_counter() - t0:.1f} s)", flush=True)
        results.update(figures)
        results_path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"[bench] results in {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
