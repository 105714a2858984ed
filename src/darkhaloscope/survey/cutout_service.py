"""Client of the Legacy Surveys cutout service (the viewer at legacysurvey.org) over HTTP.

Endpoint and format, read from the viewer's source (github.com/legacysurvey/imagine,
``map/views.py`` ``get_cutout``/``write_cutout``, ``map/urls.py``):

    {base}/cutout.fits?ra=<deg>&dec=<deg>&layer=ls-dr10&pixscale=0.262&bands=grz&size=64&invvar

* primary HDU: float32 cube [nbands, size, size] in nanomaggies, header ``BANDS='grz'``,
  ``BAND0..``, ``IMAGETYP='IMAGE'`` and a TAN WCS centred on (ra, dec) with CRPIX = (size+1)/2
  (so the target falls between pixels size/2-1 and size/2, 0-based), RA increasing to the
  left and Dec increasing with row, like the brick coadds;
* with the bare ``invvar`` flag a second HDU, ``IMAGETYP='INVVAR'``, holds the inverse-variance
  cube (1/nanomaggy^2) in the same layout;
* a ``MASKBITS`` HDU is written by the viewer's code only when asked internally
  (``with_maskbits``), which the HTTP view does not expose: stamps from the service have no
  maskbits (zeros, ``maskbits_available=False``) unless a mirror provides the HDU.
* The service RESAMPLES the coadds onto the requested TAN grid (Lanczos); training stamps are
  native brick pixels, so prefer bricks when they are at hand (``anchors cutouts --bricks``).

Tractor-catalog metadata (PSF FWHM, PSF depth, fluxes) for a position comes from the
viewer's catalog cutout ``{base}/{layer}/cat.fits?ralo=&rahi=&declo=&dechi=`` (a FITS table
of Tractor rows), the nearest row within ``match_radius`` arcsec.

Robustness: retries with exponential back-off on HTTP 5xx/429, timeouts and connection
errors; 4xx and malformed FITS are not retried; every failure is a :class:`CutoutError`
naming the URL and the reason. Successful responses are cached on disk by URL hash, written
atomically, so a rerun does not hit the network and a half-written file is never read.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CutoutError, redact
from .cutout import Cutout

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.legacysurvey.org/viewer"
DEFAULT_LAYER = "ls-dr10"
PIXEL_SCALE = 0.262  # arcsec / pixel, DR10 coadds


@dataclass(frozen=True)
class ServiceOptions:
    """How to reach the service.

    base_url: viewer root (``.../viewer``); layer: survey layer; pixscale: arcsec/pixel;
    timeout: seconds per request; retries: extra attempts after the first; backoff: first
    wait in seconds (doubled per retry, capped at max_backoff); cache_dir: local cache folder
    ('' = no cache); match_radius: arcsec for catalog metadata.
    """

    base_url: str = DEFAULT_BASE_URL
    layer: str = DEFAULT_LAYER
    pixscale: float = PIXEL_SCALE
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    cache_dir: str = ""
    match_radius: float = 1.5
    user_agent: str = "darkhaloscope-cutout-client"


@dataclass
class ServiceCutout:
    """A cutout plus where it came from: ``url``, ``from_cache``, ``maskbits_available``,
    and the FITS header cards worth keeping (``header``)."""

    cutout: Cutout
    url: str
    from_cache: bool = False
    maskbits_available: bool = False
    header: dict = field(default_factory=dict)


def cutout_url(ra: float, dec: float, size: int = 64, bands: str = "grz", options: ServiceOptions | None = None) -> str:
    """URL of a FITS cutout with its invvar HDU (ra, dec in deg; size in pixels)."""
    o = options or ServiceOptions()
    q = urllib.parse.urlencode({
        "ra": f"{ra:.7f}", "dec": f"{dec:.7f}", "layer": o.layer,
        "pixscale": f"{o.pixscale:g}", "bands": bands, "size": int(size),
    })
    return f"{o.base_url.rstrip('/')}/cutout.fits?{q}&invvar"


def catalog_url(ra: float, dec: float, radius_arcsec: float, options: ServiceOptions | None = None) -> str:
    """URL of the Tractor-catalog box around (ra, dec) (deg; half-side ``radius_arcsec``)."""
    o = options or ServiceOptions()
    dd = radius_arcsec / 3600.0
    dr = dd / max(np.cos(np.radians(dec)), 1e-6)
    q = urllib.parse.urlencode({"ralo": f"{ra - dr:.7f}", "rahi": f"{ra + dr:.7f}", "declo": f"{dec - dd:.7f}", "dechi": f"{dec + dd:.7f}"})
    return f"{o.base_url.rstrip('/')}/{o.layer}/cat.fits?{q}"


def _is_retryable_http(code: int) -> bool:
    return code >= 500 or code == 429


class CutoutService:
    """HTTP client with retries, back-off and a disk cache. Thread-safe for reads."""

    def __init__(self, options: ServiceOptions | None = None, sleep=time.sleep) -> None:
        self.options = options or ServiceOptions()
        self._sleep = sleep  # injectable so tests do not wait for real back-off
        self.requests_made = 0

    # ------------------------------------------------------------------ transport
    def _cache_path(self, url: str) -> Path | None:
        if not self.options.cache_dir:
            return None
        h = hashlib.sha256(url.encode()).hexdigest()
        return Path(self.options.cache_dir) / h[:2] / f"{h}.fits"

    def _request(self, url: str) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": self.options.user_agent})
        self.requests_made += 1
        with urllib.request.urlopen(req, timeout=self.options.timeout) as resp:
            return resp.read()

    def fetch(self, url: str) -> bytes:
        """Response body of ``url``, retrying transient failures; raises CutoutError."""
        o = self.options
        last = ""
        for attempt in range(o.retries + 1):
            if attempt:
                wait = min(o.backoff * 2 ** (attempt - 1), o.max_backoff)
                log.info("retrying %s in %.1f s (%s)", redact(url), wait, last)
                self._sleep(wait)
            try:
                return self._request(url)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if not _is_retryable_http(exc.code):
                    raise CutoutError(f"cutout service refused the request: {last}", path=redact(url), reason=last) from None
            except TimeoutError as exc:
                last = f"timeout after {o.timeout:g} s ({exc})"
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    last = f"timeout after {o.timeout:g} s"
                else:
                    last = f"connection error: {exc.reason}"
            except (ConnectionError, OSError) as exc:  # reset / incomplete read
                last = f"connection error: {exc}"
        raise CutoutError(f"cutout service failed after {o.retries + 1} attempts: {last}", path=redact(url), reason=last)

    def _fetch_cached(self, url: str, parse):
        """(parsed, from_cache): cache hit if it parses; else fetch, parse, then cache."""
        path = self._cache_path(url)
        if path is not None and path.is_file():
            try:
                return parse(path.read_bytes()), True
            except CutoutError:
                log.warning("discarding unreadable cache file %s", path)
                path.unlink(missing_ok=True)
        data = self.fetch(url)
        parsed = parse(data)  # raises CutoutError on malformed data: nothing is cached
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return parsed, False

    # ------------------------------------------------------------------ cutouts
    def fetch_cutout(self, ra: float, dec: float, size: int = 64, bands: str = "grz") -> ServiceCutout:
        """A stamp from the service; raises CutoutError (HTTP failure, malformed FITS)."""
        url = cutout_url(ra, dec, size, bands, self.options)
        (cut, info), cached = self._fetch_cached(url, lambda b: parse_cutout_fits(b, size, bands, source=url))
        return ServiceCutout(cut, redact(url), cached, info["maskbits_available"], info["header"])

    def cutout(self, ra: float, dec: float, size: int = 64, bands: str = "grz") -> Cutout:
        """Same contract as ``survey.cutout.cutout``: never raises for bad data; a failure is a
        ``Cutout.failed`` whose reason names the URL."""
        try:
            return self.fetch_cutout(ra, dec, size, bands).cutout
        except CutoutError as exc:
            return Cutout.failed(str(exc), size=size, nbands=len(bands))

    def catalog_metadata(self, ra: float, dec: float, bands: str = "grz") -> dict:
        """Tractor metadata of the nearest catalogued object within ``match_radius``.

        Returns ``psf_fwhm_<b>`` (arcsec), ``psfdepth_<b>`` (1/nanomaggy^2), ``flux_<b>``
        (nanomaggies), ``match_sep_arcsec``; an empty dict when nothing lies within the radius.
        Raises CutoutError when the service fails or returns something that is not a table.
        """
        url = catalog_url(ra, dec, self.options.match_radius, self.options)
        rows, _ = self._fetch_cached(url, lambda b: parse_catalog_fits(b, source=url))
        return nearest_metadata(rows, ra, dec, self.options.match_radius, bands)


# ---------------------------------------------------------------------- parsing
def _open_fits(data: bytes, source: str):
    from astropy.io import fits

    if not data:
        raise CutoutError("empty response where a FITS file was expected", path=redact(source), reason="empty")
    if not data[:30].startswith(b"SIMPLE"):
        head = data[:60].decode("latin-1", "replace").strip()
        raise CutoutError(f"response is not FITS (starts with {head[:40]!r})", path=redact(source), reason="malformed")
    from astropy.utils.exceptions import AstropyUserWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)  # "file may have been truncated"
            hdul = fits.open(io.BytesIO(data), memmap=False)
            hdul.verify("exception")
            for h in hdul:  # force the read: a truncated file fails here, not later
                _ = h.data
        return hdul
    except Exception as exc:  # astropy raises OSError/ValueError/VerifyError/TypeError
        raise CutoutError(f"malformed FITS: {exc}", path=redact(source), reason="malformed") from None


def parse_cutout_fits(data: bytes, size: int, bands: str, source: str = "") -> tuple[Cutout, dict]:
    """(Cutout, info) from the bytes of a ``cutout.fits`` response (format in the module doc).

    Non-finite pixels get image 0 and invvar 0. Raises CutoutError when the file is not FITS,
    lacks the image or invvar HDU, or has the wrong bands or shape.
    """
    hdul = _open_fits(data, source)
    nb = len(bands)
    by_type: dict[str, np.ndarray] = {}
    header = {}
    for i, h in enumerate(hdul):
        if h.data is None:
            continue
        kind = str(h.header.get("IMAGETYP", "IMAGE" if i == 0 else "")).strip().upper()
        by_type.setdefault(kind, np.asarray(h.data))
        if i == 0:
            header = {k: h.header[k] for k in ("BANDS", "BRICK", "CRVAL1", "CRVAL2", "CD1_1", "CD2_2", "SURVEY", "VERSION") if k in h.header}
    got_bands = str(header.get("BANDS", bands)).strip()
    if got_bands != bands:
        raise CutoutError(f"service returned bands {got_bands!r}, asked for {bands!r}", path=redact(source), reason="bands")
    if "IMAGE" not in by_type:
        raise CutoutError("no image HDU in the cutout", path=redact(source), reason="malformed")
    if "INVVAR" not in by_type:
        raise CutoutError("no INVVAR HDU in the cutout (was '&invvar' sent?)", path=redact(source), reason="no invvar")

    def cube(a: np.ndarray, what: str) -> np.ndarray:
        a = a.reshape((1, *a.shape)) if a.ndim == 2 else a
        if a.shape != (nb, size, size):
            raise CutoutError(f"{what} has shape {a.shape}, expected {(nb, size, size)}", path=redact(source), reason="shape")
        return a.astype(np.float32)

    image, invvar = cube(by_type["IMAGE"], "image"), cube(by_type["INVVAR"], "invvar")
    bad = ~np.isfinite(image) | ~np.isfinite(invvar) | (invvar < 0)
    image[bad], invvar[bad] = 0.0, 0.0
    mb = by_type.get("MASKBITS")
    if mb is not None and mb.shape == (size, size):
        maskbits, have_mb = mb.astype(np.int32), True
    else:
        maskbits, have_mb = np.zeros((size, size), np.int32), False
    ok = bool((invvar > 0).any())
    cut = Cutout(image=image, invvar=invvar, maskbits=maskbits, ok=ok,
                 reason=None if ok else f"no coverage (invvar all zero) at {redact(source)}",
                 brickname=str(header["BRICK"]) if "BRICK" in header else None)
    return cut, {"maskbits_available": have_mb, "header": header}


def parse_catalog_fits(data: bytes, source: str = "") -> dict[str, np.ndarray]:
    """Columns (lower-case names) of the Tractor table in a ``cat.fits`` response."""
    hdul = _open_fits(data, source)
    for h in hdul[1:]:
        if getattr(h, "columns", None) is not None:
            return {n.lower(): np.asarray(h.data[n]) for n in h.columns.names}
    raise CutoutError("no table HDU in the catalog response", path=redact(source), reason="malformed")


def nearest_metadata(rows: dict[str, np.ndarray], ra: float, dec: float, radius_arcsec: float, bands: str = "grz") -> dict:
    """Metadata of the row nearest (ra, dec) within ``radius_arcsec`` (see catalog_metadata)."""
    if not rows or "ra" not in rows or len(rows["ra"]) == 0:
        return {}
    dra = (np.asarray(rows["ra"], float) - ra + 180.0) % 360.0 - 180.0
    sep = 3600.0 * np.hypot(dra * np.cos(np.radians(dec)), np.asarray(rows["dec"], float) - dec)
    i = int(np.argmin(sep))
    if sep[i] > radius_arcsec:
        return {}
    out = {"match_sep_arcsec": float(sep[i])}
    for b in bands:
        for src, dst in ((f"psfsize_{b}", f"psf_fwhm_{b}"), (f"psfdepth_{b}", f"psfdepth_{b}"), (f"flux_{b}", f"flux_{b}")):
            v = float(rows[src][i]) if src in rows else np.nan
            out[dst] = v if np.isfinite(v) and (v > 0 or dst.startswith("flux")) else np.nan
    return out
