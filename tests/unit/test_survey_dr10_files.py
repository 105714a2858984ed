"""Coadd files written with each DR10 setting (legacypipe survey.py get_compression_args): headers
as DR10's, read back by the brick reader (tile by tile and whole) bit for bit against astropy's
full decode, and stamp format 2 storing them with no raw pixels; the DR10 layout and photo-z join."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from survey_helpers import small_config, small_survey  # noqa: F401  (session fixture)

from darkhaloscope.dataset.stamp import decode_stamp, encode_plane, encode_stamp
from darkhaloscope.errors import CatalogError
from darkhaloscope.survey import decoded
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.bricks import BRICKS_TABLE, Brick, coadd_relpath, write_bricks_table
from darkhaloscope.survey.dr10_files import DR10_COMPRESSION, dr10_tile, write_coadd
from darkhaloscope.survey.tasks import build_tasks

NAME = "1500p100"
SHAPE = (250, 330)  # not a multiple of 100: partial tiles at both edges


def _arrays(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    iv = (2.0e5 * (1 + 0.015 * rng.standard_normal(SHAPE))).astype(np.float32)
    iv[:, :7] = 0.0  # no coverage: DR10 invvar is exactly 0 there
    img = (rng.standard_normal(SHAPE) / np.sqrt(2.0e5)).astype(np.float32)
    img[:, :7] = 0.0  # DITHER_2 keeps exact zeros
    img[100:110, 200:210] += 3.0  # a bright source
    mb = np.zeros(SHAPE, np.int32)
    mb[50:80, 60:90] = (1 << 16) | (1 << 1)  # SUB_BLOB (bit 16) needs int32; BRIGHT
    mb[150:160, :] |= 1 << 8
    return {"image": img, "invvar": iv, "maskbits": mb, "nexp": np.full(SHAPE, 3, np.int16),
            "psfsize": (1.2 + 0.01 * rng.standard_normal(SHAPE)).astype(np.float32),
            "depth": (5e3 * (1 + 0.1 * rng.standard_normal(SHAPE))).astype(np.float32)}


@pytest.fixture(scope="module")
def dr10_brick(tmp_path_factory):
    """A brick written with every DR10 file setting, in the DR10 layout (<release>/south)."""
    release = tmp_path_factory.mktemp("dr10_files")
    root = release / "south"
    arrays = _arrays()
    h = fits.Header()
    for k, v in {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 10.0, "CRPIX1": 165.5, "CRPIX2": 125.5,
                 "CD1_1": -0.262 / 3600, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.262 / 3600}.items():
        h[k] = v
    for kind, arr in arrays.items():
        for band in ("maskbits",) if kind == "maskbits" else "grz":
            write_coadd(root / coadd_relpath(NAME, kind, None if kind == "maskbits" else band), arr, kind, h, dither_seed=11)
    write_bricks_table(release / BRICKS_TABLE, [Brick(NAME, 1, 150.0, 10.0, 149.9, 150.1, 9.9, 10.1)])
    return root, arrays


def _header(root, kind, band="g"):
    with fits.open(root / coadd_relpath(NAME, kind, None if kind == "maskbits" else band)) as h:
        return dict(h[1]._bintable.header), h[1].data


def test_headers_are_dr10s(dr10_brick, shared_data):
    root, _ = dr10_brick
    expect = {"image": ("RICE_1", "SUBTRACTIVE_DITHER_2", -32), "invvar": ("RICE_1", "NO_DITHER", -32),
              "maskbits": ("HCOMPRESS_1", None, 32), "nexp": ("HCOMPRESS_1", None, 16),
              "psfsize": ("GZIP_1", "NONE", -32), "depth": ("GZIP_1", "NONE", -32)}
    for kind, (cmp, quant, bitpix) in expect.items():
        h, _ = _header(root, kind)
        assert (h["ZCMPTYPE"], h.get("ZQUANTIZ"), h["ZBITPIX"]) == (cmp, quant, bitpix), kind
        assert (h["ZTILE1"], h["ZTILE2"]) == (100, 100), kind
        if cmp == "HCOMPRESS_1":
            assert h["ZNAME1"] == "SCALE" and h["ZVAL1"] == 0.0  # lossless
    h, _ = _header(root, "image")
    assert h["ZDITHER0"] == 11
    # the real DR6 brick: the same tiles and image quantisation
    dr6 = shared_data / "desitarget_dr6_coadd_brick/coadd/095/0959p805/legacysurvey-0959p805-image-g.fits.fz"
    with fits.open(dr6) as f:
        real = f[1]._bintable.header
    assert (real["ZTILE1"], real["ZTILE2"], real["ZQUANTIZ"]) == (100, 100, "SUBTRACTIVE_DITHER_2")
    assert dr10_tile((3600, 3600)) == (100, 100) and dr10_tile((302, 1003)) == (101, 101) and dr10_tile((300, 64)) == (100, 100)


def test_values_survive_as_each_setting_promises(dr10_brick):
    root, arrays = dr10_brick
    for kind in ("maskbits", "nexp", "psfsize", "depth"):  # lossless
        _, data = _header(root, kind)
        assert np.dtype(data.dtype).newbyteorder("=") == np.dtype(DR10_COMPRESSION[kind].dtype), kind
        assert np.array_equal(data, arrays[kind]), kind
    _, img = _header(root, "image")
    assert np.abs(img - arrays["image"]).max() <= 0.5e-4 + 1e-7  # absolute step 1e-4 nanomaggy
    assert (img[:, :7] == 0).all()
    _, iv = _header(root, "invvar")
    assert (iv[:, :7] == 0).all()
    good = arrays["invvar"] > 0
    assert np.abs(iv[good] / arrays["invvar"][good] - 1).max() < 2e-3  # q = 16 on a 1.5 % scatter


@pytest.mark.parametrize("mode", ["tiles", "whole"])
def test_reader_equals_astropy_full_decode(dr10_brick, mode, monkeypatch):
    root, _ = dr10_brick
    r = BrickReader(str(root))
    if mode == "whole":
        r.expect(NAME, 10**6)
    else:
        monkeypatch.setattr(decoded, "SECTION_CALL_MS", 0.0)  # never switch to whole
        monkeypatch.setattr(decoded, "direct_box_ms", lambda tile, size: 0.0)
    ob = r.brick(NAME)
    for kind, band in [("image", "r"), ("invvar", "z"), ("maskbits", None), ("nexp", "g"), ("psfsize", "g"), ("depth", "r")]:
        d = ob.open(kind, band).decoded
        _, full = _header(root, kind, band or "g")
        for y0, x0 in [(0, 0), (37, 261), (186, 266), (120, 95)]:
            got = d.read(y0, y0 + 64, x0, x0 + 64)
            if mode == "tiles" and kind in ("image", "invvar"):  # RICE: the box alone, one compiled call, no tile kept
                assert d.data is None and not d.tiles and not d.have.any(), kind
            assert got.dtype == full.dtype and np.array_equal(got.view(np.uint8), full[y0 : y0 + 64, x0 : x0 + 64].view(np.uint8)), (kind, y0, x0)
        if kind in ("maskbits", "nexp"):  # HCOMPRESS from the heap: tiles cached, never a whole pass
            assert d.rice is not None and d.rice.bytes_read > 0 and d.calls == 0 and not d.have.all()
        else:
            assert d.have.all() == (mode == "whole")
        if kind in ("image", "invvar"):  # the compiled RICE path, whole or box by box, never astropy sections
            assert d.rice is not None and d.rice.bytes_read > 0 and d.calls == 0


def test_format2_round_trips_every_plane_with_no_raw_pixels(dr10_brick):
    root, arrays = dr10_brick
    r = BrickReader(str(root))
    from astropy.wcs import WCS

    with fits.open(root / coadd_relpath(NAME, "image", "g")) as h:
        w = WCS(h[1].header)
    for x, y in [(40.2, 40.7), (290.0, 200.0), (166.4, 124.9), (60.0, 210.3)]:
        ra, dec = (float(v) for v in w.all_pix2world([[x, y]], 0)[0])
        c = r.cutout(ra, dec, 64, "grz")
        assert c.ok, c.reason
        for plane in ("image", "invvar"):
            members = encode_plane(getattr(c, plane), None, c.grids[plane])
            assert all(g is not None for g in c.grids[plane])
            assert int(np.unpackbits(members["raw"]).sum()) == 0, plane  # no raw pixels
        blob = encode_stamp(c.image, c.invvar, c.maskbits, grids=c.grids)
        out = decode_stamp(blob)
        for k in ("image", "invvar"):
            assert np.array_equal(out[k].view(np.uint32), getattr(c, k).view(np.uint32)), k
        assert out["maskbits"].dtype == np.int32 and np.array_equal(out["maskbits"], c.maskbits)


def test_layout_and_photoz_join(small_survey, tmp_path):  # noqa: F811
    cfg, root = small_survey
    release = root.parent
    assert (release / "survey-bricks.fits.gz").is_file() and not (root / "survey-bricks.fits.gz").exists()
    summary = fits.getdata(root / "survey-bricks-dr10-south.fits.gz", 1)
    assert {"PSFSIZE_R", "PSFDEPTH_R", "GALDEPTH_Z", "EBV"} <= set(summary.columns.names)
    assert 22.0 < float(summary["PSFDEPTH_R"][0]) < 27.0  # AB magnitudes, not 1/nanomaggy^2
    sweeps = sorted((root / "sweep" / "10.1").glob("sweep-*.fits"))
    assert sweeps and all((root / "sweep" / "10.1-photo-z" / s.name.replace(".fits", "-pz.fits")).is_file() for s in sweeps)
    assert "Z_PHOT_MEDIAN" not in fits.getdata(sweeps[0], 1).columns.names  # DR10 sweeps carry no photo-z
    build_tasks(cfg, str(root / "sweep" / "10.1"), str(tmp_path / "t"))
    tasks = pq.read_table(str(tmp_path / "t")).to_pandas()
    pz = {}
    for s in sweeps:
        p = fits.getdata(root / "sweep" / "10.1-photo-z" / s.name.replace(".fits", "-pz.fits"), 1)
        pz.update({(int(b), int(o)): float(z) for b, o, z in zip(p["BRICKID"], p["OBJID"], p["Z_PHOT_MEDIAN"], strict=True)})
    assert len(tasks) > 10 and tasks["z_phot"].notna().all()
    for _, t in tasks.iterrows():
        assert np.float32(t["z_phot"]) == np.float32(pz[(int(t["brickid"]), int(t["objid"]))])
    # the reader finds survey-bricks.fits.gz one level above the region folder
    assert BrickReader(str(root)).table() is not None
    # a photo-z file whose rows are not the sweep's is an error naming both
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(root / "sweep", bad / "sweep")
    p = bad / "sweep" / "10.1-photo-z" / sweeps[0].name.replace(".fits", "-pz.fits")
    with fits.open(p) as h:
        data = h[1].data.copy()
    data["OBJID"][3] += 1000
    fits.BinTableHDU(data).writeto(p, overwrite=True)
    with pytest.raises(CatalogError, match="row 3"):
        build_tasks(cfg, str(bad / "sweep" / "10.1"), str(tmp_path / "u"))


def test_direct_rice_decoder_is_bit_exact_and_names_a_corrupt_tile(dr10_brick, shared_data, tmp_path):
    """survey/tile_decode.py against astropy's full decode: every DR10 RICE setting, the real DR6 image."""
    from darkhaloscope.errors import DataFileError
    from darkhaloscope.survey.decoded import DecodedImage
    from darkhaloscope.survey.tile_decode import RiceTiles

    root, _ = dr10_brick
    files = [root / coadd_relpath(NAME, k, "g") for k in ("image", "invvar")]
    files.append(shared_data / "desitarget_dr6_coadd_brick/coadd/095/0959p805/legacysurvey-0959p805-image-g.fits.fz")
    for path in files:
        with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
            rt = RiceTiles.of(h[1], f)
            assert rt is not None, path
            out = np.full(rt.shape, np.nan, np.float32)
            rt.decode_into(out, 0, rt.grid[0], 0, rt.grid[1])
            assert np.array_equal(out.view(np.uint32), fits.getdata(path).astype(np.float32).view(np.uint32)), path
    # a tile whose bytes are damaged: a DataFileError naming the file, never a crash
    bad = tmp_path / "bad.fits.fz"
    raw = bytearray(files[0].read_bytes())
    with fits.open(files[0]) as h:
        t = h[1]._bintable
        start = t._data_offset + t.header["NAXIS1"] * t.header["NAXIS2"]
    raw[start + 4 : start + 4000] = b"\xff" * 3996  # the first tile: all high-entropy codes, bytes run out
    bad.write_bytes(bytes(raw))
    with open(bad, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
        d = DecodedImage(h[1], str(bad), 0, fileobj=f)
        with pytest.raises(DataFileError, match="bad.fits.fz"):
            d.read(0, 10, 0, 10)


def test_direct_hcompress_decoder_is_bit_exact_and_names_a_corrupt_tile(dr10_brick, shared_data, tmp_path):
    """survey/hcompress_tiles.py against astropy's full decode: DR10 int32 maskbits, the real DR6 int16 nexp."""
    from darkhaloscope.errors import DataFileError
    from darkhaloscope.survey.decoded import DecodedImage
    from darkhaloscope.survey.hcompress_tiles import HcompressTiles
    from darkhaloscope.survey.tile_decode import RiceTiles

    root, _ = dr10_brick
    files = [root / coadd_relpath(NAME, "maskbits", None),  # the fixture's nexp is constant: DR6's real one instead
             shared_data / "desitarget_dr6_coadd_brick/coadd/095/0959p805/legacysurvey-0959p805-nexp-z.fits.fz"]
    noisy = np.random.default_rng(3).integers(0, 2**17, (250, 330)).astype(np.int32)  # every bit to SUB_BLOB, no smooth areas
    fits.CompImageHDU(noisy, compression_type="HCOMPRESS_1", tile_shape=(100, 100)).writeto(tmp_path / "noisy.fits.fz")
    files.append(tmp_path / "noisy.fits.fz")
    for path in files:
        full = fits.getdata(path)
        assert np.unique(full).size > 1, path  # a reference with structure, so a wrong decode shows
        with open(path, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
            ht = HcompressTiles.of(h[1], f)
            assert ht is not None, path
            out = np.full(ht.shape, -1, full.dtype)
            ht.decode_into(out, 0, ht.grid[0], 0, ht.grid[1])
            assert out.dtype == full.dtype and np.array_equal(out, full), path
            sub = np.full(ht.shape, -1, full.dtype)  # a box of tiles not at the origin (edge tiles included)
            ht.decode_into(sub, 1, ht.grid[0], 1, ht.grid[1])
            t0, t1 = ht.tile
            assert np.array_equal(sub[t0:, t1:], full[t0:, t1:]), path
            assert RiceTiles.of(h[1], f) is None  # each decoder takes only its own files
            raw = np.frombuffer(path.read_bytes(), np.uint8)
            zero = [ht.zero_tile(bytes(raw[ht.offsets[k] : ht.offsets[k] + ht.nbytes[k]]), *ht.tile_size(k // ht.grid[1], k % ht.grid[1]))
                    for k in range(len(ht.nbytes))]
            t0, t1 = ht.tile
            truth = [not full[r * t0 : (r + 1) * t0, c * t1 : (c + 1) * t1].any() for r in range(ht.grid[0]) for c in range(ht.grid[1])]
            assert zero == truth, path  # the all-zero shortcut fires exactly on the all-zero tiles
    bad = tmp_path / "bad.fits.fz"
    raw = bytearray(files[0].read_bytes())
    with fits.open(files[0]) as h:
        t = h[1]._bintable
        start = t._data_offset + t.header["NAXIS1"] * t.header["NAXIS2"]
    raw[start : start + 16] = b"\x00" * 16  # the first tile's magic code and sizes: not an HCOMPRESS stream
    bad.write_bytes(bytes(raw))
    with open(bad, "rb") as f, fits.open(f, memmap=False, lazy_load_hdus=True) as h:
        d = DecodedImage(h[1], str(bad), 0, fileobj=f)
        assert isinstance(d.rice, HcompressTiles)
        with pytest.raises(DataFileError, match="bad.fits.fz"):
            d.read(0, 10, 0, 10)


def test_light_open_gives_astropys_wcs_and_tile_table(dr10_brick, shared_data):
    """survey/tile_table.py (raw header blocks + TFORM record dtype) against astropy's CompImageHDU."""
    import warnings

    from astropy.wcs import WCS

    from darkhaloscope.survey.tile_table import LightCompHDU, read_tile_table

    root, _ = dr10_brick
    paths = [root / coadd_relpath(NAME, k, None if k == "maskbits" else "g") for k in ("image", "invvar", "maskbits", "psfsize")]
    paths.append(shared_data / "desitarget_dr6_coadd_brick/coadd/095/0959p805/legacysurvey-0959p805-image-g.fits.fz")
    xy = np.random.default_rng(5).uniform(0, 300, (40, 2))
    for path in paths:
        with open(path, "rb") as f, fits.open(path) as h, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            light = LightCompHDU(read_tile_table(f), None)
            ref = h[1]
            assert light.shape == ref.shape and tuple(light.tile_shape) == tuple(ref.tile_shape), path
            for name in ref._bintable.columns.names:
                assert np.array_equal(np.asarray(light._bintable.data[name.upper()]), np.asarray(ref._bintable.data[name])), (path, name)
            assert light._bintable._data_offset == ref._bintable._data_offset, path
            w, wref = WCS(light.wcs_header), WCS(ref.header)
            assert w.to_header_string() == wref.to_header_string(), path
            assert np.array_equal(w.all_pix2world(xy, 0), wref.all_pix2world(xy, 0)), path
