"""The cutout-service client against a real HTTP server on 127.0.0.1 serving FITS in the
Legacy Surveys viewer's format (astropy writes it, the client parses it), plus a 500, a
timeout, a 404 and malformed files. Only loopback traffic."""

from __future__ import annotations

import io
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from astropy.io import fits

from darkhaloscope.errors import CutoutError
from darkhaloscope.survey.cutout import Cutout
from darkhaloscope.survey.cutout_service import CutoutService, ServiceOptions, cutout_url


def service_fits(ra: float, dec: float, size: int, bands: str, with_invvar: bool, pixscale: float) -> bytes:
    """A FITS file laid out like the viewer's cutout.fits (map/views.py write_cutout)."""
    nb = len(bands)
    yy, xx = np.mgrid[:size, :size]
    image = np.stack([(b + 1) * 0.01 + 1e-4 * (yy * size + xx) for b in range(nb)]).astype(np.float32)
    image[0, 0, 0] = np.nan  # a no-data pixel
    hdr = fits.Header()
    hdr["BANDS"] = bands
    for i, b in enumerate(bands):
        hdr[f"BAND{i}"] = b
    hdr.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
                "CRPIX1": (size + 1) / 2, "CRPIX2": (size + 1) / 2,
                "CD1_1": -pixscale / 3600, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": pixscale / 3600,
                "IMAGETYP": "IMAGE", "BRICK": "1500p020"})
    hdus = [fits.PrimaryHDU(image, header=hdr)]
    if with_invvar:
        ih = hdr.copy()
        ih["IMAGETYP"] = "INVVAR"
        hdus.append(fits.ImageHDU(np.full((nb, size, size), 2500.0 * (1 + np.arange(nb))[:, None, None], np.float32), header=ih))
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def catalog_fits(ra: float, dec: float) -> bytes:
    cols = [fits.Column(name="ra", format="D", array=[ra + 0.5 / 3600, ra + 10 / 3600]),
            fits.Column(name="dec", format="D", array=[dec, dec]),
            fits.Column(name="psfsize_g", format="E", array=[1.5, 9]), fits.Column(name="psfsize_r", format="E", array=[1.3, 9]),
            fits.Column(name="psfsize_z", format="E", array=[1.2, 9]), fits.Column(name="psfdepth_r", format="E", array=[400.0, 1]),
            fits.Column(name="flux_r", format="E", array=[12.5, 1])]
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(buf)
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    counts: dict[str, int] = {}
    queries: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "image/fits") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):  # noqa: N802 (http.server API)
        url = urllib.parse.urlparse(self.path)
        mode = url.path.strip("/").split("/")[0]
        Handler.counts[mode] = Handler.counts.get(mode, 0) + 1
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        Handler.queries.append({"mode": mode, **{k: v[0] for k, v in q.items()}})
        if url.path.endswith("/cat.fits"):
            ra = (float(q["ralo"][0]) + float(q["rahi"][0])) / 2
            dec = (float(q["declo"][0]) + float(q["dechi"][0])) / 2
            return self._send(200, catalog_fits(ra, dec))
        ra, dec = float(q["ra"][0]), float(q["dec"][0])
        size, bands, pix = int(q["size"][0]), q["bands"][0], float(q["pixscale"][0])
        good = service_fits(ra, dec, size, bands, "invvar" in q, pix)
        if mode == "ok":
            return self._send(200, good)
        if mode == "flaky" and Handler.counts[mode] <= 2:
            return self._send(500, b"Internal Server Error", "text/plain")
        if mode == "flaky":
            return self._send(200, good)
        if mode == "down":
            return self._send(500, b"Internal Server Error", "text/plain")
        if mode == "missing":
            return self._send(404, b"not found", "text/plain")
        if mode == "slow":
            time.sleep(1.0)
            return self._send(200, good)
        if mode == "html":
            return self._send(200, b"<html><body>No overlap</body></html>", "text/html")
        if mode == "trunc":
            return self._send(200, good[: len(good) - 2880 - 100])
        return self._send(400, b"bad mode", "text/plain")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def client(base: str, mode: str, tmp_path=None, **kw) -> tuple[CutoutService, list[float]]:
    waits: list[float] = []
    opts = ServiceOptions(base_url=f"{base}/{mode}", cache_dir=str(tmp_path) if tmp_path else "", **kw)
    return CutoutService(opts, sleep=waits.append), waits


def test_url_has_the_service_parameters():
    url = cutout_url(150.1, 2.2, 64, "grz")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query, keep_blank_values=True)
    assert url.startswith("https://www.legacysurvey.org/viewer/cutout.fits?")
    assert q["layer"] == ["ls-dr10"] and q["pixscale"] == ["0.262"] and q["bands"] == ["grz"]
    assert q["size"] == ["64"] and "invvar" in q and float(q["ra"][0]) == 150.1


def test_ok_parses_image_invvar_and_caches(server, tmp_path):
    svc, _ = client(server, "ok", tmp_path)
    sc = svc.fetch_cutout(150.0, 2.0, 64, "grz")
    expected = fits.open(io.BytesIO(service_fits(150.0, 2.0, 64, "grz", True, 0.262)))
    exp_img = np.nan_to_num(expected[0].data)
    assert isinstance(sc.cutout, Cutout) and sc.cutout.ok and not sc.from_cache
    assert sc.cutout.image.dtype == np.float32 and sc.cutout.image.shape == (3, 64, 64)
    np.testing.assert_array_equal(sc.cutout.image, exp_img)
    exp_iv = expected[1].data.copy()
    exp_iv[0, 0, 0] = 0.0  # the NaN image pixel gets no weight
    np.testing.assert_array_equal(sc.cutout.invvar, exp_iv)
    assert sc.cutout.maskbits.shape == (64, 64) and sc.cutout.maskbits.dtype == np.int32
    assert not sc.maskbits_available and sc.cutout.brickname == "1500p020"
    n = svc.requests_made
    again = svc.fetch_cutout(150.0, 2.0, 64, "grz")
    assert again.from_cache and svc.requests_made == n
    np.testing.assert_array_equal(again.cutout.image, sc.cutout.image)
    # a corrupted cache file is discarded and refetched
    cached = next(tmp_path.rglob("*.fits"))
    cached.write_bytes(b"garbage")
    third = svc.fetch_cutout(150.0, 2.0, 64, "grz")
    assert not third.from_cache and svc.requests_made == n + 1


def test_500_is_retried_with_backoff(server):
    svc, waits = client(server, "flaky", retries=3, backoff=0.5)
    cut = svc.fetch_cutout(10.0, -5.0).cutout
    assert cut.ok and svc.requests_made == 3
    assert waits == [0.5, 1.0]  # exponential back-off


def test_persistent_500_gives_clear_error(server):
    svc, waits = client(server, "down", retries=2, backoff=0.1)
    with pytest.raises(CutoutError) as err:
        svc.fetch_cutout(10.0, -5.0)
    assert "HTTP 500" in str(err.value) and "after 3 attempts" in str(err.value) and "/down/cutout.fits" in str(err.value)
    assert svc.requests_made == 3 and waits == [0.1, 0.2]
    failed = svc.cutout(10.0, -5.0)  # the non-raising contract of survey.cutout
    assert not failed.ok and "HTTP 500" in failed.reason and failed.image.shape == (3, 64, 64)


def test_404_is_not_retried(server):
    svc, waits = client(server, "missing", retries=3)
    with pytest.raises(CutoutError, match="HTTP 404"):
        svc.fetch_cutout(1.0, 1.0)
    assert svc.requests_made == 1 and waits == []


def test_timeout(server):
    svc, waits = client(server, "slow", timeout=0.2, retries=1, backoff=0.01)
    with pytest.raises(CutoutError) as err:
        svc.fetch_cutout(1.0, 1.0)
    assert "timeout" in str(err.value) and svc.requests_made == 2


@pytest.mark.parametrize("mode,needle", [("html", "not FITS"), ("trunc", "malformed FITS")])
def test_malformed_files(server, tmp_path, mode, needle):
    svc, _ = client(server, mode, tmp_path, retries=2)
    with pytest.raises(CutoutError, match=needle):
        svc.fetch_cutout(1.0, 1.0)
    assert svc.requests_made == 1  # malformed content is not retried ...
    assert not list(tmp_path.rglob("*.fits"))  # ... and never cached


def test_catalog_metadata_nearest_row(server):
    svc, _ = client(server, "ok", match_radius=1.5)
    meta = svc.catalog_metadata(150.0, 2.0)
    assert meta["psf_fwhm_r"] == pytest.approx(1.3) and meta["psf_fwhm_g"] == pytest.approx(1.5)
    assert meta["psfdepth_r"] == pytest.approx(400.0) and meta["flux_r"] == pytest.approx(12.5)
    assert np.isnan(meta["psfdepth_g"])  # column absent -> NaN, never 0
    assert meta["match_sep_arcsec"] == pytest.approx(0.5 * np.cos(np.radians(2.0)), abs=1e-3)
    q = [x for x in Handler.queries if "ralo" in x][-1]
    assert float(q["ralo"]) < 150.0 < float(q["rahi"])


# ---------------------------------------------------------------- `anchors cutouts` end to end
def _anchor_csv(path, rows):
    path.write_text("ra,dec,name,grade,reference\n" + "".join(f"{r},{d},{n},A,Huang et al. (2020) - arXiv:1906.00970\n" for r, d, n in rows))
    return path


def test_anchor_cutouts_from_service(server, tmp_path):
    from darkhaloscope.cli import main as cli
    from darkhaloscope.dataset.hosts import read_host_rows
    from darkhaloscope.dataset.manifest import is_complete
    from darkhaloscope.dataset.stamp import decode_stamp
    from darkhaloscope.ml.anchor_stamps import FWHM_TO_SIGMA, load_anchor_stamps

    csv = _anchor_csv(tmp_path / "a.csv", [(150.0, 2.0, "L1"), (151.0, 3.0, "L2"), (152.0, 40.0, "north")])
    assert cli(["anchors", "build", "--out", str(tmp_path / "anchors.parquet"), "--catalog", str(csv)]) == 0
    rc = cli(["anchors", "cutouts", "--anchors", str(tmp_path / "anchors.parquet"), "--out", str(tmp_path / "stamps"),
              "--service", f"{server}/ok", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    root = tmp_path / "stamps" / "anchor_stamps"  # a host table: anchors cutouts is stage over the anchors
    assert is_complete(str(root))
    hosts = read_host_rows(str(root)).to_pandas().set_index("name")
    assert sorted(hosts.index) == ["L1", "L2"]  # Dec 40 is outside DR10 south: skipped by default
    assert (hosts["stamp_source"] == "cutout_service").all() and not hosts["stamp_quantised"].any()
    assert (hosts["role"] == "known_lens").all() and (hosts["split"] == "test").all()
    t, images, info = load_anchor_stamps(root)
    t = t.set_index("name").loc[["L1", "L2"]]
    st = decode_stamp(hosts.loc["L1", "stamp_npz"])
    ref = fits.open(io.BytesIO(service_fits(150.0, 2.0, 64, "grz", True, 0.262)))
    np.testing.assert_array_equal(st["image"], np.nan_to_num(ref[0].data))
    assert st["maskbits"].dtype == np.int32 and not t["maskbits_available"].any()
    assert info["cutout_source"] == {"service": 2} and info["n_without_maskbits"] == 2
    # metadata from the service's Tractor rows, depth from invvar where the catalog lacks it
    assert t["psf_fwhm_r"].iloc[0] == pytest.approx(1.3) and t["psfdepth_r"].iloc[0] == pytest.approx(400.0)
    s = 1.5 * FWHM_TO_SIGMA / 0.262
    assert t["psfdepth_g"].iloc[0] == pytest.approx(2500.0 / (4 * np.pi * s * s), rel=1e-5)
    assert t["metadata_source"].iloc[0] == "service-tractor+invvar-depth"


def test_anchor_cutouts_from_bricks_use_the_training_cutout(shared_data, tmp_path):
    from astropy.nddata import Cutout2D
    from astropy.wcs import WCS

    from darkhaloscope.cli import main as cli
    from darkhaloscope.dataset.hosts import cutout_from_host_row, read_host_rows
    from darkhaloscope.dataset.stamp import decode_stamp
    from darkhaloscope.ml.anchor_stamps import load_anchor_stamps

    root = shared_data / "desitarget_dr6_coadd_brick"
    img = fits.open(root / "coadd/095/0959p805/legacysurvey-0959p805-image-g.fits.fz")
    wcs = WCS(img[1].header)
    ra, dec = (float(v) for v in wcs.all_pix2world(400.3, 900.6, 0))
    csv = _anchor_csv(tmp_path / "b.csv", [(ra, dec, "inbrick"), (10.0, 10.0, "nowhere")])
    cli(["anchors", "build", "--out", str(tmp_path / "anchors.parquet"), "--catalog", str(csv)])
    rc = cli(["anchors", "cutouts", "--anchors", str(tmp_path / "anchors.parquet"), "--out", str(tmp_path / "s"),
              "--bricks", str(root), "--bands", "g", "--all-dec"])
    assert rc == 0
    hosts = {r["name"]: r for r in read_host_rows(str(tmp_path / "s" / "anchor_stamps")).to_pylist()}
    ok = hosts["inbrick"]
    assert ok["cutout_ok"] and ok["stamp_source"] == "bricks" and ok["stamp_quantised"] and ok["brickname"] == "0959p805"
    ref = Cutout2D(img[1].data, wcs.all_world2pix(ra, dec, 0), (64, 64), mode="strict").data
    np.testing.assert_array_equal(decode_stamp(ok["stamp_npz"])["image"][0], ref)
    from darkhaloscope.config import Config, replace

    assert cutout_from_host_row(ok, replace(Config(), **{"survey.bands": "g"})).image[0].tobytes() == ref.astype(np.float32).tobytes()
    t, _, _ = load_anchor_stamps(tmp_path / "s" / "anchor_stamps")
    row = t.set_index("name").loc["inbrick"]
    # DR6 has no maskbits file: the host row says so, and so does the anchors' reader
    assert row["cutout_source"] == "bricks" and not row["maskbits_available"] and "no maskbits file" in row["cutout_note"]
    assert np.isnan(row["psf_fwhm_g"]) and row["metadata_source"] == "none"  # no tractor / psfsize: NaN, never 0
    bad = hosts["nowhere"]
    assert not bad["cutout_ok"] and "bricks:" in bad["cutout_reason"] and bad["stamp_npz"] is None
