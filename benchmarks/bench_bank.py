"""Source bank: build time of the procedural bank, open time, and per-stamp template fetch time.

Figures (medians of this run): ``bank_build_s`` (procedural bank of cfg.bank.procedural.n_sources),
``bank_open_ms`` (first open of the HDF5 file in a fresh SourceBank, no process cache),
``template_fetch_us_median`` (uncached random template read, gzip chunk), and
``template_fetch_cached_us_median`` (LRU hit).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from darkhaloscope.config import Config
from darkhaloscope.sources import bank as bank_mod
from darkhaloscope.sources.bank import SourceBank, write_bank
from darkhaloscope.sources.procedural import build_procedural_bank


def run(cfg: Config, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    path = out_dir / "bench_bank.h5"
    t0 = time.perf_counter()
    write_bank(path, *build_procedural_bank(cfg))
    build_s = time.perf_counter() - t0
    opens = []
    for _ in range(7):
        t = time.perf_counter()
        b = SourceBank.open(path, reuse=False)
        opens.append((time.perf_counter() - t) * 1e3)
        b.close()
    bank = SourceBank.open(path, reuse=False)
    rng = np.random.default_rng(0)
    idx = rng.integers(len(bank), size=2000)
    cold, warm = [], []
    for i in idx:
        bank._cache.clear()  # measure the HDF5 read + gzip decode, not the LRU
        t = time.perf_counter()
        bank.template(int(i))
        cold.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        bank.template(int(i))
        warm.append((time.perf_counter() - t) * 1e6)
    bank.close()
    return {
        "bank_build_s": round(build_s, 3),
        "bank_open_ms": round(float(np.median(opens)), 3),
        "template_fetch_us_median": round(float(np.median(cold)), 2),
        "template_fetch_cached_us_median": round(float(np.median(warm)), 2),
        "bank_file_mib": round(path.stat().st_size / 2**20, 3),
        "bank_template_cache_size": bank_mod.TEMPLATE_CACHE_SIZE,
    }
