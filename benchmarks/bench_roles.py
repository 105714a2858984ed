"""Cost of a row per role, in one run (``python benchmarks/run_all.py --only roles``).

Figures (medians of CPU milliseconds of this process per row, ``inject`` + ``encode_row``, on
GalSim templates and a synthetic 64 x 64 host, 60 tasks per role): ``role_<role>_ms_per_row``
for control, injection, unlensed and ring, and the ratios ``role_<role>_over_injection``. A
painted negative renders the task's would-be injection first (its brightness and size
reference, roles.py), then its own light: expect about one injection plus the negative's render.
``lookalike_<kind>_ms`` times ``physics.lookalikes.lookalike_unit`` alone per kind.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from darkhaloscope.config import Config
from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.inject import inject
from darkhaloscope.physics.lookalikes import KINDS, Lookalike, lookalike_unit
from darkhaloscope.physics.reference import galsim_templates
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.survey.cutout import Cutout

N = 60


def _bank() -> SourceBank:
    n = 12
    meta = {"cosmos_index": np.arange(n), "ident": np.array([f"id{i}" for i in range(n)]),
            "mag_f814w": np.linspace(21.0, 24.0, n).astype(np.float32), "hlr_arcsec": np.full(n, 0.3, np.float32),
            "z_phot": np.ones(n, np.float32), "sersic_n": np.ones(n, np.float32), "q": np.ones(n, np.float32),
            "pixel_scale": np.full(n, 0.03, np.float32), "split_group": np.array(["train"] * n)}
    return SourceBank.from_arrays(galsim_templates(n, seed=5), meta)


def _cutout() -> Cutout:
    rng = np.random.default_rng(1)
    s, sigma = 64, 0.006
    yy, xx = np.mgrid[:s, :s] - 31.5
    image = (rng.normal(0, sigma, (3, s, s)) + 0.4 * np.exp(-(xx**2 + yy**2) / 10.0)).astype(np.float32)
    return Cutout(image=image, invvar=np.full((3, s, s), 1 / sigma**2, np.float32), maskbits=np.zeros((s, s), np.int32), brickname="1500p100")


def _task(i: int, role: str) -> dict:
    return {"task_id": 1000 + i, "galaxy_id": f"10000_1_{i}", "brickname": "1500p100", "ra": 150.0, "dec": 10.0, "bx": 300.0, "by": 300.0,
            "split": "train", "role": role, "flux_g": 2.0, "flux_r": 5.0, "flux_z": 9.0, "psfsize_g": 1.4, "psfsize_r": 1.3,
            "psfsize_z": 1.2, "psfdepth_g": 2000.0, "psfdepth_r": 1000.0, "psfdepth_z": 200.0}


def _cpu_ms(fn) -> float:
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) * 1e3


def run(cfg: Config, out_dir: Path) -> dict:
    bank, cut = _bank(), _cutout()
    out: dict = {}
    for role in ("control", "injection", "unlensed", "ring"):
        for i in range(3):  # warm the compiled kernels and caches
            encode_row(inject(_task(i, role), cut, bank, cfg), cfg.render.write_arc)
        ms = [_cpu_ms(lambda i=i, role=role: encode_row(inject(_task(i, role), cut, bank, cfg), cfg.render.write_arc)) for i in range(N)]
        out[f"role_{role}_ms_per_row"] = float(np.median(ms))
    for role in ("control", "unlensed", "ring"):
        out[f"role_{role}_over_injection"] = out[f"role_{role}_ms_per_row"] / out["role_injection_ms_per_row"]
    for kind in KINDS:
        p = Lookalike(kind, 0.1, -0.2, 2.0, 0.15, 0.7, 30.0, 180.0, 40.0, 20.0, 2, 5, 0.4, 7)
        lookalike_unit(p, cfg.survey.stamp_size, cfg.survey.pixel_scale, cfg.negatives.supersampling)
        out[f"lookalike_{kind}_ms"] = float(np.median([_cpu_ms(lambda p=p: lookalike_unit(p, cfg.survey.stamp_size, cfg.survey.pixel_scale, cfg.negatives.supersampling)) for _ in range(20)]))
    return out
