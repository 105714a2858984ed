"""Independent references for tests and benchmarks: lenstronomy's own ImageModel, and small
GalSim / real-COSMOS source templates. Not used by the pipeline.

``lenstronomy_arc`` builds the image exactly as the seeds did (``ImageModel`` with
``LensModel(["SIE", "SHEAR"])`` and ``LightModel(["INTERPOL"])``), on a grid with this
project's axes (x = +column, y = +row, 0 at the stamp centre); ``supersampling=1`` is the seeds'
one-ray-per-pixel render, 16 the converged reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .params import LensParams
from .render import SourcePlacement


def lenstronomy_arc(
    template: np.ndarray, lens: LensParams, src: SourcePlacement, size: int, pixel_scale: float,
    supersampling: int, kernel: np.ndarray | None = None, flux: float = 1.0,
) -> np.ndarray:
    """lenstronomy ImageModel image (flux per pixel) of ``flux`` x template, optionally convolved
    with a pixel ``kernel`` at stamp resolution. A new ImageModel per call, so INTERPOL's
    per-image interpolation cache never serves a stale template."""
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    origin = -(size - 1) / 2.0 * pixel_scale
    grid = PixelGrid(nx=size, ny=size, transform_pix2angle=np.eye(2) * pixel_scale, ra_at_xy_0=origin, dec_at_xy_0=origin)
    psf = PSF(psf_type="NONE") if kernel is None else PSF(psf_type="PIXEL", kernel_point_source=np.asarray(kernel, float))
    model = ImageModel(
        grid, psf, lens_model_class=LensModel(["SIE", "SHEAR"]), source_model_class=LightModel(["INTERPOL"]),
        kwargs_numerics={"supersampling_factor": supersampling, "supersampling_convolution": False},
    )
    image = np.asarray(template, float)
    if src.flip:
        image = image[::-1]
    kwargs_source = [{
        "image": image * flux / src.scale**2,  # INTERPOL takes surface brightness
        "amp": 1.0, "center_x": src.x, "center_y": src.y, "phi_G": np.radians(src.rotation_deg), "scale": src.scale,
    }]
    return model.image(
        kwargs_lens=lens.lenstronomy_kwargs(), kwargs_source=kwargs_source, unconvolved=kernel is None,
        source_add=True, lens_light_add=False, point_source_add=False,
    )


def galsim_templates(n: int, seed: int = 0, size: int = 128, scale: float = 0.03) -> np.ndarray:
    """``n`` unit-flux clumpy star-forming-like galaxies (GalSim Sersic disc + RandomKnots, HLR
    0.1-0.6"), float32 [n, size, size] at ``scale`` arcsec/pixel."""
    import galsim

    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        hlr = rng.uniform(0.1, 0.6)
        disc = galsim.Sersic(n=rng.uniform(0.8, 2.5), half_light_radius=hlr).shear(q=rng.uniform(0.3, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians)
        knots = galsim.RandomKnots(int(rng.integers(5, 40)), half_light_radius=hlr * 1.2, rng=galsim.BaseDeviate(int(rng.integers(1 << 30))))
        f = rng.uniform(0.2, 0.6)
        gal = galsim.Convolve((1 - f) * disc + f * knots, galsim.Gaussian(fwhm=0.08))
        img = gal.drawImage(nx=size, ny=size, scale=scale).array
        out[i] = img / img.sum()
    return out


def cosmos_templates(shared_data: str | Path, size: int = 128) -> np.ndarray:
    """Real HST F814W galaxies (the two slsim COSMOS test stamps and five AEGIS stamps), noise
    and all: background (median of the border) subtracted, centred crop/pad to ``size``, unit
    sum. float32 [7, size, size] at 0.03"/pixel."""
    from astropy.io import fits

    root = Path(shared_data)
    stamps = []
    with fits.open(root / "slsim_cosmos_test_sample" / "test_galaxy_images_23.5.fits") as hdul:
        stamps += [np.asarray(h.data, float) for h in hdul[1:3]]
    for name in ("AEGIS_F814w_images_01.fits", "AEGIS_F814w_images_02.fits"):
        with fits.open(root / "galsim_cosmos_example" / "real_comparison_images" / name) as hdul:
            stamps += [np.asarray(h.data, float) for h in hdul if h.data is not None and np.ndim(h.data) == 2]
    out = []
    for a in stamps:
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        a = a - np.median(border)
        canvas = np.zeros((size, size))
        ny, nx = a.shape
        sy, sx = max(0, (ny - size) // 2), max(0, (nx - size) // 2)
        crop = a[sy : sy + size, sx : sx + size]
        oy, ox = (size - crop.shape[0]) // 2, (size - crop.shape[1]) // 2
        canvas[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
        out.append(canvas / canvas.sum())
    return np.asarray(out, np.float32)
