"""Config sections of the source bank (DESIGN 3.2)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param, section


@dataclass(frozen=True)
class ProceduralBankConfig:
    """The embedded default bank: GalSim clumpy star-forming galaxies."""

    n_sources: int = param(300, "Number of procedural sources.", "count", ge=3, le=1000000)
    n_knots_min: int = param(5, "Minimum RandomKnots clumps per galaxy.", "count", ge=0, le=500)
    n_knots_max: int = param(40, "Maximum RandomKnots clumps per galaxy.", "count", ge=0, le=500)
    knot_flux_fraction_min: float = param(0.2, "Minimum flux fraction in clumps.", "fraction", ge=0.0, le=1.0)
    knot_flux_fraction_max: float = param(0.6, "Maximum flux fraction in clumps.", "fraction", ge=0.0, le=1.0)
    bulge_probability: float = param(0.3, "Probability that a galaxy gets a de Vaucouleurs bulge.", "fraction", ge=0.0, le=1.0)


@dataclass(frozen=True)
class BankConfig:
    """COSMOS source bank (DESIGN 3.2)."""

    stamp_size: int = param(128, "Side S of each template.", "pixel", ge=16, le=1024)
    pixel_scale: float = param(0.03, "Template pixel scale (COSMOS HST/ACS).", "arcsec/pixel", gt=0.0)
    catalog_file: str = param("real_galaxy_catalog_25.2.fits", "RealGalaxyCatalog file name inside --cosmos-dir.", "")
    exclusion_level: str = param("marginal", "GalSim COSMOSCatalog exclusion level.", "", choices=("none", "bad_stamp", "bad_fits", "marginal"))
    hlr_min: float = param(0.1, "Minimum catalog half-light radius kept.", "arcsec", ge=0.0)
    hlr_max: float = param(1.0, "Maximum catalog half-light radius kept.", "arcsec", gt=0.0)
    mag_min: float = param(17.0, "Brightest F814W magnitude kept.", "AB mag")
    mag_max: float = param(25.2, "Faintest F814W magnitude kept.", "AB mag")
    zphot_min: float = param(0.0, "Minimum photometric redshift kept.", "", ge=0.0)
    zphot_max: float = param(6.0, "Maximum photometric redshift kept.", "", ge=0.0)
    min_snr: float = param(20.0, "Minimum template S/N (flux / noise in the galaxy's aperture).", "", ge=0.0)
    max_flux_outside: float = param(0.05, "Reject templates whose model flux outside the stamp exceeds this.", "fraction", ge=0.0, le=1.0)
    max_sources: int = param(20000, "Keep at most this many sources (0 = all).", "count", ge=0)
    split_salt: str = param("dhs-bank-split-v1", "Salt of the blake2b hash of ident that assigns split_group.", "")
    psf_handling: str = param("native", "'native': keep the HST PSF (FWHM ~0.11\", << ground seeing); 'gaussian': GalSim RealGalaxy deconvolved and reconvolved with a Gaussian of target_psf_fwhm.", "", choices=("native", "gaussian"))
    target_psf_fwhm: float = param(0.15, "Gaussian target PSF FWHM when psf_handling = gaussian (must exceed the HST PSF, ~0.11\").", "arcsec", gt=0.0, le=1.0)
    max_hlr_mismatch: float = param(0.2, "Reject templates whose measured HLR differs from the catalog HLR by more than this fraction.", "fraction", gt=0.0)
    max_negative_fraction: float = param(0.05, "Reject templates whose negative pixels carry more than this fraction of the absolute flux.", "fraction", ge=0.0, le=1.0)
    detect_nsigma: float = param(1.5, "Segmentation threshold on the detection-filtered HST stamp, in its noise sigma.", "sigma", gt=0.0)
    detect_smooth_pix: float = param(2.0, "Gaussian sigma of the detection filter.", "pixel", gt=0.0, le=20.0)
    grow_pix: int = param(3, "Dilation of the galaxy segment (keeps the faint wings).", "pixel", ge=0, le=50)
    denoise_sigma_pix: float = param(1.0, "Gaussian smoothing of the kept galaxy inside its segment (0 = none); 1 pixel = 0.03\".", "pixel", ge=0.0, le=5.0)
    kind: str = param("procedural", "Which bank build-bank makes without --cosmos-dir.", "", choices=("procedural", "cosmos"))
    procedural: ProceduralBankConfig = section(ProceduralBankConfig)
