"""Survey-layer benchmark: build a small synthetic survey, then time cutouts and the task table.

Figures (medians of this run; nothing asserted):
  survey_build_s_per_brick     wall seconds to render + write one synthetic brick
  cutout_ms_per_stamp          64x64 grz stamp, warm LRU cache, stamps anywhere in the field
  cutout_ms_per_stamp_cold     same, first stamp of a brick (opens 7 files)
  cutout_bytes_read_per_stamp  bytes astropy read through the file layer for one cold stamp
  build_tasks_s                in-process task table from the synthetic Tractor catalogs
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np


def run(cfg, out_dir) -> dict:
    from darkhaloscope.config import replace
    from darkhaloscope.survey import remote
    from darkhaloscope.survey.brick_reader import BrickReader
    from darkhaloscope.survey.build_survey import build_survey
    from darkhaloscope.survey.synth_geometry import SynthGrid, synthetic_bricks
    from darkhaloscope.survey.tasks import build_tasks

    out = Path(out_dir) / "bench_survey"
    bcfg = replace(cfg, **{"survey.synthetic.n_bricks_ra": 2, "survey.synthetic.n_bricks_dec": 1})
    bricks = synthetic_bricks(bcfg)
    t0 = time.perf_counter()
    build_survey(bcfg, out / "survey")
    build_s = (time.perf_counter() - t0) / len(bricks)

    grid = SynthGrid(bcfg)
    n = bcfg.survey.synthetic.brick_size_pix
    rng = np.random.default_rng(0)
    xs = rng.uniform(-n / 2 + 40, 1.5 * n - 40, 300)
    ys = rng.uniform(-n / 2 + 40, n / 2 - 40, 300)
    ra, dec = grid.pix2world(xs, ys)
    reader = BrickReader(str(out / "survey"), cache_size=bcfg.survey.brick_cache_size)
    warm, cold = [], []
    for k in range(len(xs)):
        t = time.perf_counter()
        c = reader.cutout(float(ra[k]), float(dec[k]), bcfg.survey.stamp_size, bcfg.survey.bands)
        (cold if k < 1 else warm).append((time.perf_counter() - t) * 1e3)
        assert c.ok, c.reason

    # bytes read for one cold stamp: count through the buffered reader
    counted = {"n": 0}
    orig = remote._NativeRaw.readinto

    def counting(self, buffer):
        got = orig(self, buffer)
        counted["n"] += got
        return got

    remote._NativeRaw.readinto = counting
    try:
        BrickReader(str(out / "survey")).cutout(float(ra[0]), float(dec[0]), bcfg.survey.stamp_size, bcfg.survey.bands)
    finally:
        remote._NativeRaw.readinto = orig

    t0 = time.perf_counter()
    build_tasks(bcfg, str(out / "survey" / "tractor"), str(out / "tasks"))
    tasks_s = time.perf_counter() - t0
    return {
        "survey_build_s_per_brick": round(build_s, 3),
        "cutout_ms_per_stamp": round(statistics.median(warm), 3),
        "cutout_ms_per_stamp_cold": round(cold[0], 3),
        "cutout_bytes_read_per_stamp": counted["n"],
        "build_tasks_s": round(tasks_s, 3),
    }
