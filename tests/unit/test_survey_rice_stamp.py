"""survey/rice_stamp.py (every RICE file of a stamp in two compiled calls) against astropy's full
decode of each file: DR10 image (SUBTRACTIVE_DITHER_2) and invvar (NO_DITHER q 16) files plus a
SUBTRACTIVE_DITHER_1 one, random boxes, boxes ending the heap (the padded copy) and edge tiles;
through BrickReader (the packed path is the one used, whole-decoded bricks are not); a truncated
file is a failed cutout naming it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

from darkhaloscope.survey import decoded
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.bricks import BRICKS_TABLE, Brick, coadd_relpath, write_bricks_table
from darkhaloscope.survey.dr10_files import write_coadd
from darkhaloscope.survey.rice_stamp import RiceStamp
from darkhaloscope.survey.tile_decode import RiceTiles

SHAPE = (250, 330)  # partial tiles at both edges
NAME = "1500p100"


def _files(tmp_path, n: int = 6) -> list:
    """n RICE files: image (DITHER_2) / invvar (NO_DITHER q 16) as DR10 writes them, one DITHER_1 (fitsio)."""
    import fitsio

    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        img = (rng.standard_normal(SHAPE) * 0.003).astype(np.float32)
        img[:, :9] = 0.0
        img[100:110, 200 - 10 * i : 210 - 10 * i] += 5.0
        p = tmp_path / f"f{i}.fits.fz"
        if i == n - 1:
            fitsio.write(str(p), img, compress="RICE", tile_dims=[100, 100], qlevel=4.0, qmethod="SUBTRACTIVE_DITHER_1", dither_seed=3, clobber=True)
        elif i % 2:
            write_coadd(p, (2e5 * (1 + 5 * img)).astype(np.float32), "invvar", dither_seed=5 + i)
        else:
            write_coadd(p, img, "image", dither_seed=5 + i)
        paths.append(p)
    return paths


def test_packed_boxes_equal_astropys_full_decode(tmp_path):
    paths = _files(tmp_path)
    fulls = [fits.getdata(p).astype(np.float32) for p in paths]
    fobjs = [open(p, "rb") for p in paths]  # noqa: SIM115
    hduls = [fits.open(f, memmap=False, lazy_load_hdus=True) for f in fobjs]
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    try:
        tiles = [RiceTiles.of(h[1], None, fd) for h, fd in zip(hduls, fds, strict=True)]
        stamp = RiceStamp.of(tiles, [str(p) for p in paths])
        assert stamp is not None
        rng = np.random.default_rng(4)
        boxes = [(SHAPE[0] - 64, SHAPE[1] - 64, 64), (0, 0, 64), (99, 99, 2), (0, 0, 1), (0, 0, 250)]
        boxes += [(int(rng.integers(0, SHAPE[0] - 64)), int(rng.integers(0, SHAPE[1] - 64)), 64) for _ in range(30)]
        for y0, x0, s in boxes:
            out = np.full((len(paths), s, s), np.nan, np.float32)
            stamp.read(y0, x0, s, out)
            for f, full in enumerate(fulls):
                assert np.array_equal(out[f].view(np.uint32), full[y0 : y0 + s, x0 : x0 + s].view(np.uint32)), (f, y0, x0, s)
        assert stamp.bytes_read > 0
        assert RiceStamp.of(tiles[:1] + [RiceTiles.of(hduls[1][1], fobjs[1], None)], ["a", "b"]) is None  # no descriptor: per-file path
    finally:
        for h, f, fd in zip(hduls, fobjs, fds, strict=True):
            h.close()
            f.close()
            os.close(fd)


def _brick(root) -> None:
    h = fits.Header()
    for k, v in {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 10.0, "CRPIX1": 165.5, "CRPIX2": 125.5,
                 "CD1_1": -0.262 / 3600, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.262 / 3600}.items():
        h[k] = v
    rng = np.random.default_rng(9)
    for band in "grz":
        img = (rng.standard_normal(SHAPE) * 0.003).astype(np.float32)
        write_coadd(root / coadd_relpath(NAME, "image", band), img, "image", h, dither_seed=11)
        write_coadd(root / coadd_relpath(NAME, "invvar", band), (2e5 * (1 + 3 * img)).astype(np.float32), "invvar", h, dither_seed=11)
    mb = np.zeros(SHAPE, np.int32)
    mb[50:80, 60:90] = 1 << 1
    write_coadd(root / coadd_relpath(NAME, "maskbits", None), mb, "maskbits", h)
    write_bricks_table(root.parent / BRICKS_TABLE, [Brick(NAME, 1, 150.0, 10.0, 149.9, 150.1, 9.9, 10.1)])


@pytest.mark.parametrize("whole", [False, True])
def test_reader_uses_the_packed_path_bit_exactly(tmp_path, whole, monkeypatch):
    root = tmp_path / "south"
    _brick(root)
    r = BrickReader(str(root))
    if whole:
        r.expect(NAME, 10**6)
    else:
        monkeypatch.setattr(decoded, "direct_box_ms", lambda tile, size: 0.0)  # never switch to whole on its own
    wcs, _ = r.brick(NAME).wcs("grz")
    full = {(k, b): fits.getdata(root / coadd_relpath(NAME, k, b)) for k in ("image", "invvar") for b in "grz"}
    for y, x in [(40.2, 50.7), (125.0, 165.0), (200.3, 290.1), (99.5, 99.5)]:
        ra, dec = (float(v) for v in wcs.all_pix2world([[x, y]], 0)[0])
        c = r.cutout(ra, dec, 64, "grz", brickname=NAME)
        assert c.ok, c.reason
        x0, y0 = int(np.ceil(x - 32)), int(np.ceil(y - 32))
        for i, b in enumerate("grz"):
            assert np.array_equal(c.image[i], full[("image", b)][y0 : y0 + 64, x0 : x0 + 64])
            assert np.array_equal(c.invvar[i], full[("invvar", b)][y0 : y0 + 64, x0 : x0 + 64])
            assert c.grids["image"][i] is not None and c.grids["invvar"][i] is not None
    packed = r.brick(NAME).rice_stamp("grz")
    assert packed is not None and (packed[0].bytes_read > 0) != whole  # whole-decoded bricks keep the per-file path


def test_truncated_file_fails_the_cutout_naming_it(tmp_path):
    root = tmp_path / "south"
    _brick(root)
    p = root / coadd_relpath(NAME, "invvar", "r")
    with fits.open(p) as h:
        data_end = h[1]._data_offset + h[1]._data_size
    r = BrickReader(str(root))
    wcs, _ = r.brick(NAME).wcs("grz")  # opened whole
    r.brick(NAME).rice_stamp("grz")
    with open(p, "r+b") as f:  # the file shrinks after it was opened: its last tiles are gone
        f.truncate(data_end - 4000)
    ra, dec = (float(v) for v in wcs.all_pix2world([[290.0, 210.0]], 0)[0])
    c = r.cutout(ra, dec, 64, "grz", brickname=NAME)
    assert not c.ok and "invvar-r" in c.reason and "truncated" in c.reason, c.reason


@pytest.mark.parametrize(("kind", "band"), [("image", "g"), ("invvar", "z")])
def test_corrupt_tile_in_a_decoded_pair_fails_the_cutout_naming_its_file(tmp_path, kind, band):
    """Files are decoded two at a time (image g with image r, ..., invvar r with invvar z): a bad
    tile in either file of a pair names that file, not its partner."""
    root = tmp_path / "south"
    _brick(root)
    p = root / coadd_relpath(NAME, kind, band)
    with open(p, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
        rt = RiceTiles.of(h[1], f)
        start = int(rt.offsets[1 * rt.grid[1] + 1])  # tile (1, 1): under pixel (125, 165)
    raw = bytearray(p.read_bytes())
    raw[start + 4] = 0xF8  # the first block's split code becomes 31: impossible in RICE_1
    p.write_bytes(bytes(raw))
    r = BrickReader(str(root))
    wcs, _ = r.brick(NAME).wcs("grz")
    ra, dec = (float(v) for v in wcs.all_pix2world([[165.0, 125.0]], 0)[0])
    c = r.cutout(ra, dec, 64, "grz", brickname=NAME)
    assert not c.ok and f"{kind}-{band}" in c.reason and "corrupt" in c.reason, c.reason
