"""survey/rice_box.py (the compiled RICE_1 box decoder) against independent references:

- astropy's full decode of real and DR10-format files, for random boxes (edge tiles included),
  through pread on a descriptor and through ranged reads of a file object;
- astropy's own RICE_1 codec (cfitsio's ``fits_rdecomp``) on streams it wrote, and on streams
  written here with every block kind (all-zero blocks, raw 32-bit blocks, unary runs longer than
  the 64-bit window), which it must decode to the same integers;
- truncated and corrupt tiles: a clear error naming the tile (and the file, through the reader),
  never a read past the buffer.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.hdu.compressed._codecs import Rice1

from darkhaloscope.errors import DataFileError
from darkhaloscope.survey.decoded import DecodedImage
from darkhaloscope.survey.dr10_files import write_coadd
from darkhaloscope.survey.rice_box import PAD, rice_ints, rice_ints2
from darkhaloscope.survey.tile_decode import RiceTiles

DR6_IMAGE = "desitarget_dr6_coadd_brick/coadd/095/0959p805/legacysurvey-0959p805-image-g.fits.fz"


def _rice_file(path, method: str, seed: int = 0, shape=(250, 330)):
    """A RICE_1 float file as legacypipe writes them (fitsio; DR10: image DITHER_2 qz -1e-4,
    invvar NO_DITHER q 16), plus SUBTRACTIVE_DITHER_1."""
    import fitsio

    rng = np.random.default_rng(seed)
    img = (rng.standard_normal(shape) * 0.003).astype(np.float32)
    img[:, :9] = 0.0  # exact zeros (DITHER_2 keeps them)
    img[120:130, 200:210] += 5.0
    if method == "SUBTRACTIVE_DITHER_1":
        fitsio.write(str(path), img, compress="RICE", tile_dims=[100, 100], qlevel=4.0, qmethod=method, dither_seed=7, clobber=True)
    else:
        write_coadd(path, img if method == "SUBTRACTIVE_DITHER_2" else 2e5 * (1 + 5 * img), "image" if method == "SUBTRACTIVE_DITHER_2" else "invvar",
                    dither_seed=7)
    return path


@pytest.mark.parametrize("source", ["fd", "fileobj"])
def test_boxes_equal_astropys_full_decode(shared_data, tmp_path, source):
    paths = [_rice_file(tmp_path / f"{m}.fits.fz", m, i) for i, m in enumerate(["NO_DITHER", "SUBTRACTIVE_DITHER_1", "SUBTRACTIVE_DITHER_2"])]
    paths.append(shared_data / DR6_IMAGE)
    rng = np.random.default_rng(2)
    for path in paths:
        full = fits.getdata(path).astype(np.float32)
        ny, nx = full.shape
        with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
            fd = os.open(path, os.O_RDONLY) if source == "fd" else None
            rt = RiceTiles.of(h[1], f if source == "fileobj" else None, fd)
            assert rt is not None, path
            boxes = [(0, ny, 0, nx), (ny - 64, ny, nx - 64, nx), (0, 1, 0, 1)]  # whole image, the corner tile (ends the heap), one pixel
            for _ in range(25):
                y0, x0 = int(rng.integers(0, ny - 64)), int(rng.integers(0, nx - 64))
                boxes.append((y0, y0 + 64, x0, x0 + 64))
            for y0, y1, x0, x1 in boxes:
                got = rt.read_box(y0, y1, x0, x1)
                assert np.array_equal(got.view(np.uint32), full[y0:y1, x0:x1].view(np.uint32)), (path, y0, x0)
            assert rt.bytes_read > 0
            if fd is not None:
                os.close(fd)


def _write_stream(first: int, blocks: list[tuple[int, list[int]]]) -> bytes:
    """A RICE_1 stream (32-bit pixels, 32-pixel blocks) written from the format's definition:
    the first pixel raw, then per block a 5-bit code fs + 1 and each zigzag-mapped difference as
    a unary high part and fs low bits (fs = -1: all differences 0; fs = 25: raw 32 bits)."""
    bits = [int(b) for b in format(first & 0xFFFFFFFF, "032b")]
    for fs, diffs in blocks:
        bits += [int(b) for b in format(fs + 1, "05b")]
        for d in diffs if fs >= 0 else []:
            m = (d << 1) & 0xFFFFFFFF if d >= 0 else (~(d << 1)) & 0xFFFFFFFF
            if fs == 25:
                bits += [int(b) for b in format(m, "032b")]
            else:
                bits += [0] * (m >> fs) + [1] + ([int(b) for b in format(m & ((1 << fs) - 1), f"0{fs}b")] if fs else [])
    bits += [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def _decode(stream: bytes, n: int) -> tuple[int, np.ndarray]:
    buf = np.frombuffer(stream + b"\xa5" * PAD, np.uint8)  # junk after the tile must not matter
    out = np.zeros(n, np.int32)
    return rice_ints(buf, 0, len(stream), n, 32, out), out


def test_every_block_kind_matches_astropys_codec():
    rng = np.random.default_rng(4)
    blocks = [(-1, [0] * 32),                                   # all-zero block
              (0, [0, 1, -1, 200, -200, 3] + [0] * 26),         # fs 0: unary runs of 400 zeros (longer than the window)
              (3, rng.integers(-40, 40, 32).tolist()),
              (25, [2**31 - 1, -(2**31), 5] + [0] * 29),        # raw differences, wrapping at 32 bits
              (12, rng.integers(-30000, 30000, 32).tolist()),
              (1, [90] + [0] * 9)]                              # a short last block
    n = 32 * 5 + 10
    stream = _write_stream(-7, blocks)
    ref = np.frombuffer(Rice1(blocksize=32, bytepix=4, tilesize=n).decode(np.frombuffer(stream, np.uint8)), np.int32)
    status, got = _decode(stream, n)
    assert status == 0 and np.array_equal(got, ref)
    for n_first in (1, 33, 100):  # stopping early gives the same first pixels
        status, part = _decode(stream, n_first)
        assert status == 0 and np.array_equal(part[:n_first], ref[:n_first])
    x = np.cumsum(rng.integers(-3, 4, 10000)).astype(np.int32)  # astropy-written streams, outliers included
    x[500] += 200000
    x[2000], x[2001] = -(2**31), 2**31 - 1
    stream = Rice1(blocksize=32, bytepix=4, tilesize=x.size).encode(x)
    status, got = _decode(stream, x.size)
    assert status == 0 and np.array_equal(got, x)


def _decode2(a: bytes, b: bytes, n: int) -> tuple[int, np.ndarray, np.ndarray]:
    """rice_ints2 on tiles a and b laid back to back in one buffer (junk after them), as a stamp's read buffer holds them."""
    buf = np.frombuffer(a + b + b"\xa5" * PAD, np.uint8)
    out = np.zeros((2, n), np.int32)
    return rice_ints2(buf, 0, len(a), len(a), len(b), n, out[0], out[1]), out[0], out[1]


def test_two_tiles_in_lockstep_equal_astropys_codec():
    """Pairs mixing every block kind (Rice in both: lockstep; all-zero or raw in either: one
    after the other), in both orders, decoded whole and stopped early."""
    rng = np.random.default_rng(6)
    kinds = [(-1, [0] * 32), (0, [0, 1, -1, 200, -200, 3] + [0] * 26), (3, rng.integers(-40, 40, 32).tolist()),
             (25, [2**31 - 1, -(2**31), 5] + [0] * 29), (12, rng.integers(-30000, 30000, 32).tolist())]
    n = 32 * 5
    mixed = _write_stream(-7, kinds)
    x = np.cumsum(rng.integers(-300, 300, n)).astype(np.int32)  # Rice blocks facing every kind above
    x[40] += 200000
    plain = Rice1(blocksize=32, bytepix=4, tilesize=n).encode(x)
    ref = {s: np.frombuffer(Rice1(blocksize=32, bytepix=4, tilesize=n).decode(np.frombuffer(s, np.uint8)), np.int32) for s in (mixed, plain)}
    for a, b in ((mixed, plain), (plain, mixed), (plain, plain)):
        for n_first in (n, 1, 37, 100):
            status, ga, gb = _decode2(a, b, n_first)
            assert status == 0 and np.array_equal(ga[:n_first], ref[a][:n_first]) and np.array_equal(gb[:n_first], ref[b][:n_first])


def test_two_tiles_name_the_corrupt_one():
    x = np.cumsum(np.random.default_rng(7).integers(-50, 50, 10000)).astype(np.int32)
    good = Rice1(blocksize=32, bytepix=4, tilesize=x.size).encode(x)
    for bad in (good[:-40], good[:3], bytes(good[:4]) + b"\xf8" + bytes(good[5:]), bytes(good[:4]) + b"\x08" + b"\x00" * 2000):
        assert _decode2(bad, good, x.size)[0] == 1
        assert _decode2(good, bad, x.size)[0] == 2
    assert _decode2(good, good, x.size)[0] == 0


def test_corrupt_and_truncated_tiles_are_reported(tmp_path):
    x = np.cumsum(np.random.default_rng(5).integers(-50, 50, 10000)).astype(np.int32)
    stream = Rice1(blocksize=32, bytepix=4, tilesize=x.size).encode(x)
    assert _decode(stream[:-40], x.size)[0] == -1  # bytes end before the pixels
    assert _decode(stream[:3], x.size)[0] == -1
    assert _decode(bytes(stream[:4]) + b"\xf8" + bytes(stream[5:]), x.size)[0] == -1  # split code 31
    assert _decode(bytes(stream[:4]) + b"\x08" + b"\x00" * 2000, x.size)[0] == -1  # fs 0 then only zeros: runs out, stops
    # through the reader: a file cut inside its heap is a DataFileError naming the file
    path = _rice_file(tmp_path / "img.fits.fz", "SUBTRACTIVE_DITHER_2")
    cut = tmp_path / "cut.fits.fz"
    with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:  # the table of the whole file, the bytes of the cut one
        last = int(RiceTiles.of(h[1], f).offsets[-1])
        cut.write_bytes(path.read_bytes()[: last + 10])  # the last tile (the corner) cut short
        fd = os.open(cut, os.O_RDONLY)
        d = DecodedImage(h[1], str(cut), 0, fileobj=None, fd=fd)
        assert d.read(0, 64, 0, 64).shape == (64, 64)  # the first tiles are there
        with pytest.raises(DataFileError, match="cut.fits.fz.*truncated"):
            d.read(186, 250, 266, 330)
        os.close(fd)


@pytest.mark.parametrize("bad_tile", [0, 1])
def test_a_bad_tile_of_a_decoded_pair_is_the_one_named(tmp_path, bad_tile):
    """decode_box decodes neighbouring tiles two at a time: a box over tiles 0 and 1 with either
    one damaged names that tile (the pair is decoded again singly, in order)."""
    path = _rice_file(tmp_path / "img.fits.fz", "SUBTRACTIVE_DITHER_2")
    with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
        start = int(RiceTiles.of(h[1], f).offsets[bad_tile])
    raw = bytearray(path.read_bytes())
    raw[start + 4] = 0xF8  # the first block's split code becomes 31: impossible in RICE_1
    path.write_bytes(bytes(raw))
    with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
        rt = RiceTiles.of(h[1], f)
        with pytest.raises(ValueError, match=f"^tile {bad_tile}: .*corrupt"):
            rt.read_box(0, 64, 50, 150)
        good = 1 - bad_tile  # the other tile alone still decodes, equal to astropy's decode of the untouched file
        box = (0, 64, 0, 64) if good == 0 else (0, 64, 110, 174)
        got = rt.read_box(*box)
    ref = fits.getdata(_rice_file(tmp_path / "ref.fits.fz", "SUBTRACTIVE_DITHER_2")).astype(np.float32)
    assert np.array_equal(got.view(np.uint32), ref[box[0] : box[1], box[2] : box[3]].view(np.uint32))
