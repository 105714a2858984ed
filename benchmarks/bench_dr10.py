"""DR10 at its real density and file format: cutout, end-to-end row, and bytes over https.

Bricks: ``N_BRICKS`` synthetic bricks of 3600 x 3600 px written as legacypipe writes DR10's
(survey/dr10_files.py: 100 x 100 tiles; image RICE DITHER_2 qz -1e-4; invvar RICE NO_DITHER
q 16; maskbits HCOMPRESS int32), DR10-like sky (galaxies ~8,000, stars ~1,500 per deg^2) and
~37 LRGs per brick passing the DESI cuts (Poisson, no hard core). Built once and cached under
``out/bench/dr10`` (keyed by config hash and file format). Stamps: every task whose 64 px box lies
inside its brick (the bricks overlap by DR10's ~82 px per side, ``brick_overlap_pix``, so no stamp
of a primary LRG stitches). 1,330 LRGs per deg^2 before the cuts give DR10's ~37 tasks in a brick's
0.25 x 0.25 deg primary area.

Figures (CPU time of this process; the machine is shared, ``uptime`` load is recorded):
  dr10_stamps_per_brick                tasks per brick (DR10: ~37)
  dr10_cutout_ms_per_stamp             BrickReader (files opened from their raw header and tile
                                       table, survey/tile_table.py; the tiles a stamp needs read
                                       from the heap (pread per tile row) and decoded directly: the
                                       six RICE image/invvar files read in one compiled call
                                       (survey/rice_io.py) and decoded in another, two files at a
                                       time (survey/rice_box.py), integers down to the stamp's last
                                       row, only its pixels dequantised; HCOMPRESS maskbits tile by
                                       tile with the tile cache, all-zero tiles skipped
                                       (survey/hcompress_tiles.py); ``expect`` hint as generate
                                       gives), all seven files of a grz stamp; first stamp of each
                                       brick (opens) included; process warm
  dr10_cutout_warm_ms_per_stamp        the same stamps again through the same reader: files open,
                                       maskbits tiles cached (cold - warm = the opens per stamp)
  dr10_cutout_rice_ms_per_stamp        the six RICE files' read + decode alone (RiceStamp.read on
                                       the same boxes; warm - rice = Python, WCS and maskbits)
  dr10_cutout_fitsio_ms_per_stamp      the same stamps through fitsio image slices (cfitsio reads
                                       and decodes only the tiles touched), side by side
  dr10_end_to_end_core_ms_per_stamp    cutout + inject + finish_row (encode) + Parquet write (codecs as
                                       configured: gzip, pixel blobs zstd), half controls, half injections, warm
  dr10_bytes_per_stamp                 shard bytes per row written by that run (config's codec and
                                       write_arc)
  dr10_http_bytes_per_stamp            bytes fetched per stamp by survey/remote.py (https reader,
                                       counted by wrapping its readinto) from a loopback HTTP server
                                       with Range support holding the bricks, headers included
  dr10_http_requests_per_stamp         ranged GETs per stamp
  dr10_whole_brick_bytes_per_stamp     bytes per stamp if whole bricks were mirrored (the seeds' way)
  dr10_load_1min                       1-minute load average during the run
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

N_BRICKS = int(os.environ.get("DHS_BENCH_DR10_BRICKS", 3))
DR10_PIX = 3600
DEG2_PER_BRICK = (DR10_PIX * 0.262 / 3600.0) ** 2


def _config(cfg):
    from darkhaloscope.config import replace

    per = lambda dens: int(round(dens * DEG2_PER_BRICK))  # noqa: E731
    return replace(cfg, **{
        "survey.synthetic.n_bricks_ra": N_BRICKS, "survey.synthetic.n_bricks_dec": 1,
        "survey.synthetic.brick_size_pix": DR10_PIX, "survey.synthetic.tile_size": 100,
        "survey.synthetic.lrg_per_brick": per(1330), "survey.synthetic.lrg_min_separation_pix": 0.0,
        "survey.synthetic.brick_overlap_pix": 82,  # DR10's: 3600 px images on a 0.25 deg grid
        "survey.synthetic.galaxies_per_brick": per(8000), "survey.synthetic.stars_per_brick": per(1500),
        "survey.synthetic.write_maps": False, "survey.synthetic.sky_sigma_r": 0.0025,
    })


def _inputs(cfg, out: Path) -> dict:
    """Build (once) the DR10-format bricks, the tasks inside them and a bank, with the real commands."""
    import yaml

    from darkhaloscope.cli import main as cli
    from darkhaloscope.config import config_hash, config_to_dict
    from darkhaloscope.survey.build_survey import FILE_FORMAT

    base = out / "dr10"
    marker = base / f".built-{config_hash(cfg)}-files{FILE_FORMAT}"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        (base / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg)))
        c = ["--config", str(base / "config.yaml")]
        assert cli(["build-survey", *c, "--out", str(base / "survey")]) == 0
        assert cli(["build-tasks", *c, "--catalogs", str(base / "survey" / "south" / "sweep" / "10.1"), "--out", str(base / "tasks")]) == 0
        assert cli(["build-bank", *c, "--out", str(base / "bank.h5")]) == 0
        marker.touch()
    return {"survey": str(base / "survey" / "south"), "release": str(base / "survey"), "tasks": str(base / "tasks"), "bank": str(base / "bank.h5")}


def _inside(tasks: list[dict], size: int) -> list[dict]:
    half = size / 2
    return [t for t in tasks if half + 1 < t["bx"] < DR10_PIX - half - 1 and half + 1 < t["by"] < DR10_PIX - half - 1]


def _cutouts(reader, tasks, cfg) -> float:
    """CPU ms per stamp of cutting every task with ``reader`` (expect hints set)."""
    reader.expect_counts(Counter(t["brickname"] for t in tasks))
    t0 = time.process_time()
    for t in tasks:
        c = reader.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"])
        assert c.ok, c.reason
    return 1e3 * (time.process_time() - t0) / len(tasks)


def _cutout_split(root: str, tasks, cfg) -> tuple[float, float]:
    """(CPU ms per stamp of a second pass with every brick open, of the packed RICE read + decode
    alone on the same boxes): where a cutout's time goes besides opening files."""
    from darkhaloscope.survey.brick_reader import BrickReader, stamp_box

    reader = BrickReader(root, cache_size=len({t["brickname"] for t in tasks}))
    _cutouts(reader, tasks, cfg)
    warm = _cutouts(reader, tasks, cfg)
    s, boxes = cfg.survey.stamp_size, []
    for t in tasks:
        ob = reader.brick(t["brickname"])
        wcs, _ = ob.wcs(cfg.survey.bands)
        x, y = (float(v) for v in wcs.all_world2pix([[t["ra"], t["dec"]]], 0)[0])
        x0, y0 = stamp_box(x, y, s)
        boxes.append((ob.rice_stamp(cfg.survey.bands)[0], y0, x0))
    out = np.empty((2 * len(cfg.survey.bands), s, s), np.float32)
    t0 = time.process_time()
    for stamp, y0, x0 in boxes:
        stamp.read(y0, x0, s, out)
    rice = 1e3 * (time.process_time() - t0) / len(tasks)
    reader.close()
    return warm, rice


def _fitsio_cutouts(root: str, tasks, cfg) -> float:
    """CPU ms per stamp through fitsio slices (files opened once per brick, as the reader does)."""
    import math

    import fitsio
    from astropy.wcs import WCS

    from darkhaloscope.survey.bricks import coadd_relpath

    kinds = [("image", b) for b in cfg.survey.bands] + [("invvar", b) for b in cfg.survey.bands] + [("maskbits", None)]
    s = cfg.survey.stamp_size
    t0 = time.process_time()
    opened: dict = {}
    for t in tasks:
        name = t["brickname"]
        if name not in opened:
            for f in opened.get("_files", []):
                f.close()
            files = [fitsio.FITS(os.path.join(root, coadd_relpath(name, k, b))) for k, b in kinds]
            wcs = WCS(_astropy_header(files[0][1].read_header()))
            opened = {name: (files, wcs), "_files": files}
        files, wcs = opened[name]
        x, y = (float(v) for v in wcs.all_world2pix([[t["ra"], t["dec"]]], 0)[0])
        x0, y0 = math.ceil(x - s / 2), math.ceil(y - s / 2)
        for f in files:
            f[1][y0 : y0 + s, x0 : x0 + s]
    for f in opened.get("_files", []):
        f.close()
    return 1e3 * (time.process_time() - t0) / len(tasks)


def _astropy_header(h):
    from astropy.io import fits

    out = fits.Header()
    for rec in h.records():
        if rec["name"] and rec["name"] not in ("COMMENT", "HISTORY", ""):
            try:
                out[rec["name"]] = rec["value"]
            except (ValueError, KeyError):
                pass
    return out


def _http_bytes(release: str, tasks, cfg) -> tuple[float, float]:
    """(bytes, requests) per stamp fetched by the https reader from a loopback mirror of the
    release folder (tests/integration/http_mirror.py, the one the stage tests use)."""
    import sys

    from darkhaloscope.survey import remote
    from darkhaloscope.survey.brick_reader import BrickReader

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
    from http_mirror import HttpMirror

    with HttpMirror(Path(release)) as mirror:
        before = remote.bytes_read()
        reader = BrickReader(f"{mirror.url}/south")
        _cutouts(reader, tasks, cfg)
        reader.close()
        fetched, requests = remote.bytes_read() - before, len(mirror.log)
    return fetched / len(tasks), requests / len(tasks)


def _end_to_end(cfg, inputs, tasks, out: Path) -> float:
    """CPU ms per stamp: cutout + inject + finish_row + Parquet write, warm (as a partition)."""
    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.dataset.writer import ShardWriter, WriterSettings
    from darkhaloscope.spark.partition import JobContext, PartitionResources, finish_row
    from darkhaloscope.survey.brick_reader import BrickReader

    ctx = JobContext.create(cfg, str(out / "dr10_stages"), inputs["survey"], inputs["bank"], StorageOptions())
    res = PartitionResources(ctx)
    res.open_all()
    warm = BrickReader(inputs["survey"])  # compiled kernels loaded once per process, not timed
    for t in [t for t in tasks if t["role"] == "injection"][:3]:
        res.inject(t, warm.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"]), res.bank, cfg)
    res.reader.expect_counts(Counter(t["brickname"] for t in tasks))
    path = out / "dr10_stages" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    rows = []
    for t in tasks:
        cut = res.reader.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"])
        rows.append(finish_row(res.inject(t, cut, res.bank, cfg), t, ctx))
    w = ShardWriter(str(path), WriterSettings.from_config(cfg.generate))
    w.write_rows(rows)
    nbytes = w.close().bytes
    ms = 1e3 * (time.process_time() - t0) / len(tasks)
    res.close()
    shutil.rmtree(out / "dr10_stages", ignore_errors=True)
    return ms, nbytes / len(tasks)


def _stage(cfg, inputs, tasks, out: Path) -> float:
    """CPU ms per stamp of staging at DR10 density: cutout + host row (stamp format 3 with its
    grids, every task column) + Parquet write (gzip, pixels zstd), warm, as a stage partition does
    (spark/host_rows.py)."""
    from darkhaloscope.dataset.host_schema import host_schema
    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.dataset.writer import ShardWriter, WriterSettings
    from darkhaloscope.spark.host_rows import finish_host_row, make_host_row
    from darkhaloscope.spark.partition import JobContext, PartitionResources

    schema = host_schema([pq.read_schema(p) for p in sorted(Path(inputs["tasks"]).rglob("*.parquet"))])
    ctx = JobContext.create(cfg, str(out / "dr10_stage"), inputs["survey"], "", StorageOptions(), kind="stage", schema=schema)
    res = PartitionResources(ctx)
    res.reader.expect_counts(Counter(t["brickname"] for t in tasks))
    path = out / "dr10_stage" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    rows = [finish_host_row(make_host_row(t, res), t, ctx) for t in tasks]
    w = ShardWriter(str(path), WriterSettings.from_config(cfg.generate), schema=schema)
    w.write_rows(rows)
    w.close()
    ms = 1e3 * (time.process_time() - t0) / len(tasks)
    res.close()
    shutil.rmtree(out / "dr10_stage", ignore_errors=True)
    return ms


def run(cfg, out_dir) -> dict:
    from darkhaloscope.survey.brick_reader import BrickReader

    out = Path(out_dir)
    cfg = _config(cfg)
    inputs = _inputs(cfg, out)
    tasks = _inside(pq.read_table(inputs["tasks"]).sort_by("task_id").to_pylist(), cfg.survey.stamp_size)
    tasks.sort(key=lambda t: (t["brickname"], t["task_id"]))  # a partition's order: brick by brick
    load = os.getloadavg()[0]
    _cutouts(BrickReader(inputs["survey"]), tasks[:20], cfg)  # warm the process (imports, numba)
    cut = [_cutouts(BrickReader(inputs["survey"]), tasks, cfg) for _ in range(3)]
    warm, rice = zip(*[_cutout_split(inputs["survey"], tasks, cfg) for _ in range(3)], strict=True)
    fio = [_fitsio_cutouts(inputs["survey"], tasks, cfg) for _ in range(3)]
    e2e, shard = zip(*[_end_to_end(cfg, inputs, tasks, out) for _ in range(3)], strict=True)
    stage_ms = [_stage(cfg, inputs, tasks, out) for _ in range(3)]
    nbytes, nreq = _http_bytes(inputs["release"], tasks, cfg)
    whole = sum(p.stat().st_size for p in Path(inputs["survey"], "coadd").rglob("*.fits.fz")) / len(tasks)
    return {
        "dr10_stamps_per_brick": len(tasks) / N_BRICKS,
        "dr10_cutout_ms_per_stamp": statistics.median(cut),
        "dr10_cutout_warm_ms_per_stamp": statistics.median(warm),
        "dr10_cutout_rice_ms_per_stamp": statistics.median(rice),
        "dr10_cutout_fitsio_ms_per_stamp": statistics.median(fio),
        "dr10_end_to_end_core_ms_per_stamp": statistics.median(e2e),
        "dr10_stage_core_ms_per_stamp": statistics.median(stage_ms),
        "dr10_bytes_per_stamp": shard[0],
        "dr10_http_bytes_per_stamp": nbytes,
        "dr10_http_requests_per_stamp": nreq,
        "dr10_whole_brick_bytes_per_stamp": whole,
        "dr10_load_1min": load,
        "dr10_injection_fraction": float(np.mean([t["role"] == "injection" for t in tasks])),
    }
