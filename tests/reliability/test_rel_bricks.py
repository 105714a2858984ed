"""Fault 4: damaged survey files. A truncated, corrupt or empty ``.fits.fz``, a brick with a band
missing, a missing invvar file: the stamps that need the file get ``cutout_ok = false`` and a
reason naming the file; every other row is byte-identical to the undamaged run (nothing silently
corrupted); every task still has its row."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import assert_no_nan_numbers, assert_row_numbers_finite, coadd_file, copy_survey

from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.inject import inject as inject_arrays
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.survey.brick_reader import BrickReader

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore:File may have been truncated")


def inject(task, cutout, bank, cfg):
    """inject() + the dataset layer's encoding: the row a dataset holds."""
    return encode_row(inject_arrays(task, cutout, bank, cfg), cfg.render.write_arc)


def make_rows(root, world, bank) -> dict:
    """The rows the generate job makes per task (cut the stamp, inject), without Spark."""
    cfg = world.cfg
    reader = BrickReader(str(root), cfg.survey.brick_cache_size)
    try:
        return {
            t["task_id"]: inject(t, reader.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"]), bank, cfg)
            for t in world.tasks
        }
    finally:
        reader.close()


@pytest.fixture(scope="module")
def bank(world):
    return SourceBank.open(str(world.bank))


@pytest.fixture(scope="module")
def pristine(world, bank):
    rows = make_rows(world.survey, world, bank)
    assert sum(r["cutout_ok"] for r in rows.values()) > len(rows) // 2
    return rows


def _truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _garbage_tiles(p):
    data = bytearray(p.read_bytes())
    i = len(data) // 2
    data[i : i + 4000] = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))


def _garbage_header(p):
    data = bytearray(p.read_bytes())
    data[:80] = b"X" * 80
    p.write_bytes(bytes(data))


# name -> (files damaged as (kind, band), damage, words the reason must hold, whole brick lost?)
CASES = {
    "truncated": ([("image", "g")], _truncate, "truncated file", True),
    "corrupt-header": ([("image", "g")], _garbage_header, "corrupt file", True),
    "corrupt-tiles": ([("invvar", "r")], _garbage_tiles, "corrupt file", False),
    "empty-file": ([("image", "z")], lambda p: p.write_bytes(b""), "corrupt file", True),
    "missing-band": ([("image", "r"), ("invvar", "r")], os.remove, "missing band r", True),
    "missing-invvar": ([("invvar", "z")], os.remove, "missing file", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_brick_gives_named_failures_and_the_rest_continue(case, world, bank, pristine, tmp_path):
    files, damage, words, whole_brick = CASES[case]
    victim = world.bricknames[0]
    root = copy_survey(world, tmp_path / "survey")
    paths = [coadd_file(root, victim, kind, band) for kind, band in files]
    for p in paths:
        damage(p)

    rows = make_rows(root, world, bank)

    assert sorted(rows) == sorted(pristine)  # every task keeps its row
    table = rows_to_table(list(rows.values()))  # schema-valid
    assert_no_nan_numbers(table)
    assert all(not rows[tid]["cutout_ok"] for tid in rows if not pristine[tid]["cutout_ok"])
    changed = [tid for tid in rows if pristine[tid]["cutout_ok"] and rows[tid] != pristine[tid]]
    assert changed, "the damage had no effect"
    for tid in changed:
        row = rows[tid]
        assert_row_numbers_finite(row)
        assert row["cutout_ok"] is False, f"task {tid}: changed but still cutout_ok (silent corruption)"
        assert words in row["cutout_reason"] and any(str(p) in row["cutout_reason"] for p in paths), row["cutout_reason"]
        assert row["stamp_npz"] is None and row["arc_snr"] is None
        if row["role"] == "injection":
            assert row["snr_reason"].startswith("no stamp: ") and row["theta_e"] is None
    # rows that do not need the damaged file are unchanged, bytes included
    other = [t["task_id"] for t in world.tasks if t["brickname"] != victim]
    survivors = [tid for tid in other if rows[tid]["cutout_ok"]]
    assert survivors and all(rows[tid] == pristine[tid] for tid in survivors)
    if whole_brick:  # a file the whole brick needs: none of its stamps can be made
        assert not any(rows[t["task_id"]]["cutout_ok"] for t in world.tasks_of(victim))


def test_http_mirror_without_range_support_gives_the_same_stamps(world, tmp_path):
    """An https/http mirror that ignores Range (answers 200 with the whole file): the reader takes
    its slice and the stamps equal the local ones; a brick absent from the mirror is named."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):  # stdlib: HEAD + GET, no Range support
        def log_message(self, *args):
            pass

    root = copy_survey(world, tmp_path / "mirror")
    victim = world.bricknames[1]
    for p in (root / "coadd").rglob(f"legacysurvey-{victim}-*"):
        p.unlink()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        remote, local = BrickReader(url), BrickReader(str(root))  # same files, read locally
        tasks = world.tasks_of(world.bricknames[0])[:4] + world.tasks_of(victim)[:2]
        for t in tasks:
            r = remote.cutout(t["ra"], t["dec"], 64, "grz", brickname=t["brickname"])
            ref = local.cutout(t["ra"], t["dec"], 64, "grz", brickname=t["brickname"])
            if t["brickname"] == victim:
                assert not r.ok and "missing file" in r.reason and url in r.reason
            else:
                assert r.ok == ref.ok
                if ref.ok:
                    assert np.array_equal(r.image, ref.image) and np.array_equal(r.invvar, ref.invvar)
                    assert np.array_equal(r.maskbits, ref.maskbits)
    finally:
        server.shutdown()
        server.server_close()
