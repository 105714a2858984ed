"""Survey-layer benchmark: build a small synthetic survey, then time cutouts and the task table.

Figures (medians of this run; nothing asserted):
  survey_build_s_per_brick     wall seconds to render + write one synthetic brick
  cutout_ms_per_stamp          64x64 grz stamp (CPU ms), warm LRU cache, 300 stamps anywhere in 2 bricks, no hint
  cutout_ms_per_stamp_cold     same, first stamp of a brick (opens 7 files)
  cutout_bytes_read_per_stamp  bytes astropy read through the file layer for one cold stamp
  build_tasks_s                in-process task table from the synthetic Tractor catalogs
  section_call_ms, section_tile_ms, decode_ns_per_pixel_<geom>
                               astropy .section fixed cost per call, extra cost per tile read by a
                               section, whole-image decode cost per pixel (RICE_1, float32 noise):
                               the constants of survey/decoded.py
  cutout_<geom>_ms_per_stamp_file_<policy>
                               CPU ms per stamp and per file (a stamp reads 7) for n random 64 px
                               stamps of one noise image: geom dr10 = 3600^2 in 100^2 tiles (DR10's,
                               legacypipe survey.py), n = 37 (DR10 LRGs per brick); dense = 1000^2 in
                               100^2 tiles, n = 200;
                               policy sections = one .section per stamp (the old reader), tiles = tile
                               cache without hint (ski rental), hinted = expect(n) (what generate does),
                               whole = decode whole at the first stamp
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

# DR10: 3600^2 in 100^2 tiles (legacypipe survey.py get_compression_args), ~37 LRG stamps per brick;
# "dense": a 1000^2 brick holding 200 stamps (where whole-image decoding pays)
POLICY_GEOMETRIES = (("dr10", 3600, (100, 100), 37), ("dense", 1000, (100, 100), 200))


def _policy_figures(out: Path, repeats: int = 3) -> dict:
    """CPU ms per stamp and file for each decoding policy, and the cost-model constants."""
    import time

    from astropy.io import fits

    from darkhaloscope.survey import decoded

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    figures = {}
    for label, n_pix, tile, n_stamps in POLICY_GEOMETRIES:
        path = out / f"policy-{label}-dr10.fits.fz"
        if not path.exists():
            data = rng.normal(0.0, 0.0025, (n_pix, n_pix)).astype(np.float32)  # DR10 r sky noise, nanomaggies
            from darkhaloscope.survey.dr10_files import write_coadd

            write_coadd(path, data, "image", dither_seed=1, tile=tile)  # DR10's image compression
        pos = rng.integers(0, n_pix - 64, (n_stamps, 2))

        def fresh(path=path):
            h = fits.open(path, memmap=False, lazy_load_hdus=True, cache=False)
            return h, h[1]

        for policy, expected in (("sections", None), ("tiles", 0), ("hinted", n_stamps), ("whole", 10**9)):
            runs = []
            for _ in range(repeats):
                h, hdu = fresh()
                t0 = time.process_time()
                if expected is None:
                    for y, x in pos:
                        decoded.section(hdu, str(path), y, y + 64, x, x + 64)
                else:
                    d = decoded.DecodedImage(hdu, str(path), expected)
                    for y, x in pos:
                        d.read(y, y + 64, x, x + 64)
                runs.append(1e3 * (time.process_time() - t0) / n_stamps)
                h.close()
            figures[f"cutout_{label}_ms_per_stamp_file_{policy}"] = round(statistics.median(runs), 3)
        # constants of the cost model (steady state: the first whole decode of a process is slower)
        whole, one, two = [], [], []
        for _ in range(repeats + 1):
            h, hdu = fresh()
            t0 = time.process_time()
            decoded.section(hdu, str(path), 0, n_pix, 0, n_pix)
            whole.append((time.process_time() - t0) / n_pix**2)
            t0 = time.process_time()
            for k in range(20):  # one tile each
                y = (k * tile[0]) % n_pix
                decoded.section(hdu, str(path), y, y + 1, 0, 1)
            one.append((time.process_time() - t0) / 20)
            t0 = time.process_time()
            for k in range(20):  # two tiles each (side by side)
                y = (k * tile[0]) % n_pix
                decoded.section(hdu, str(path), y, y + 1, tile[1] - 1, tile[1] + 1)
            two.append((time.process_time() - t0) / 20)
            h.close()
        figures[f"decode_ns_per_pixel_{label}"] = round(1e9 * statistics.median(whole[1:]), 2)
        figures[f"section_one_tile_ms_{label}"] = round(1e3 * statistics.median(one[1:]), 3)
        figures[f"section_two_tiles_ms_{label}"] = round(1e3 * statistics.median(two[1:]), 3)
    # one section of t tiles = call + t x (tile + 100^2 pixels): two minus one gives the tile's share
    ns = figures["decode_ns_per_pixel_dr10"]
    px_ms = 1e4 * ns * 1e-6
    figures["section_tile_ms"] = round(figures["section_two_tiles_ms_dr10"] - figures["section_one_tile_ms_dr10"] - px_ms, 3)
    figures["section_call_ms"] = round(figures["section_one_tile_ms_dr10"] - figures["section_tile_ms"] - px_ms, 3)
    return figures


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
    reader = BrickReader(str(out / "survey" / "south"), cache_size=bcfg.survey.brick_cache_size)
    warm, cold = [], []
    for k in range(len(xs)):
        t = time.process_time()  # CPU: the machine is shared
        c = reader.cutout(float(ra[k]), float(dec[k]), bcfg.survey.stamp_size, bcfg.survey.bands)
        (cold if k < 1 else warm).append((time.process_time() - t) * 1e3)
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
        BrickReader(str(out / "survey" / "south")).cutout(float(ra[0]), float(dec[0]), bcfg.survey.stamp_size, bcfg.survey.bands)
    finally:
        remote._NativeRaw.readinto = orig

    t0 = time.perf_counter()
    build_tasks(bcfg, str(out / "survey" / "south" / "sweep" / "10.1"), str(out / "tasks"))
    tasks_s = time.perf_counter() - t0
    return {
        **_policy_figures(out / "policy"),
        "survey_build_s_per_brick": round(build_s, 3),
        "cutout_ms_per_stamp": round(statistics.median(warm), 3),
        "cutout_ms_per_stamp_cold": round(cold[0], 3),
        "cutout_bytes_read_per_stamp": counted["n"],
        "build_tasks_s": round(tasks_s, 3),
    }
