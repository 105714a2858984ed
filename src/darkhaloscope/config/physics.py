"""Config sections of the lens and source population and of the renderer (DESIGN 4)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param


@dataclass(frozen=True)
class LensConfig:
    """Lens (SIE + external shear) parameter distributions (seeds section 3.1)."""

    theta_e_min: float = param(0.5, "Minimum Einstein radius (uniform).", "arcsec", gt=0.0, le=10.0)
    theta_e_max: float = param(2.5, "Maximum Einstein radius (uniform).", "arcsec", gt=0.0, le=10.0)
    ellipticity_max: float = param(0.5, "Maximum lens ellipticity |e| = (1-q)/(1+q), uniform with random angle.", "", ge=0.0, lt=1.0)
    shear_max: float = param(0.05, "Maximum external shear |gamma|, uniform with random angle.", "", ge=0.0, lt=0.5)
    center_offset_max: float = param(0.5, "Maximum lens-centre offset from the stamp centre (uniform per axis).", "pixel", ge=0.0, le=5.0)
    source_position: str = param("theta_fraction", "How the source position is drawn: within a fraction of theta_E, or inside the caustic region.", "", choices=("theta_fraction", "caustic"))
    source_radius_fraction: float = param(0.5, "Source offset radius <= fraction * theta_E (area-uniform).", "fraction", ge=0.0, le=2.0)
    # population: redshifts, Einstein radius from the host, mass follows light (docs/PHYSICS.md)
    min_dz: float = param(0.1, "Only sources with src_z >= lens_z + min_dz are drawn.", "redshift", ge=0.0, le=5.0)
    theta_e_policy: str = param("host", "'host': theta_E from the host's sigma_v and both redshifts (SIS); 'uniform': U(theta_e_min, theta_e_max), the seeds' flat draw.", "", choices=("host", "uniform"))
    theta_e_out_of_range: str = param("reject", "A source whose host theta_E falls outside [theta_e_min, theta_e_max]: 'reject' (the try fails, another source is drawn) or 'clip' (theta_E clipped to the range).", "", choices=("reject", "clip"))
    cosmology: str = param("Planck18", "astropy.cosmology realisation for D_s, D_ls and distance moduli.", "", choices=("Planck18", "Planck15", "WMAP9"))
    fj_log_sigma_at_m21: float = param(2.20, "Faber-Jackson zero point: log10 sigma_v at rest-frame M_r = -21 (SDSS early types, Bernardi et al. 2003; BOSS CMASS sigma ~240 km/s at M_r ~ -22.8, Thomas et al. 2013).", "log10(km/s)", ge=1.5, le=3.0)
    fj_slope: float = param(-0.1, "Faber-Jackson slope d log10 sigma_v / d M_r (L ~ sigma^4).", "dex/mag", ge=-0.5, le=0.0)
    fj_scatter_dex: float = param(0.08, "Scatter of log10 sigma_v at fixed luminosity (Bernardi et al. 2003).", "dex", ge=0.0, le=0.5)
    kcorr_r_per_z: float = param(2.3, "Linear K-correction of an elliptical in r: K_r(z) = kcorr_r_per_z * z (Poggianti 1997, E template, z < 0.8, +-0.2 mag).", "mag", ge=0.0, le=5.0)
    sigma_v_min: float = param(100.0, "Lower bound of the host sigma_v (Faber-Jackson draws are clipped to [sigma_v_min, sigma_v_max]).", "km/s", gt=0.0, le=1000.0)
    sigma_v_max: float = param(450.0, "Upper bound of the host sigma_v.", "km/s", gt=0.0, le=1000.0)
    ellipticity_policy: str = param("light", "'light': SIE e1/e2 from the host's Tractor shape_e1/e2 (image frame) plus scatter; 'random': |e| uniform in [0, ellipticity_max] with a random angle.", "", choices=("light", "random"))
    ellipticity_scatter: float = param(0.05, "Gaussian scatter added to each of the mass e1, e2 (mass vs light ellipticity).", "", ge=0.0, le=0.5)
    angle_scatter_deg: float = param(10.0, "Gaussian scatter of the mass position angle about the light's (SLACS: ~10 deg, Koopmans et al. 2006; Bolton et al. 2008).", "deg", ge=0.0, le=90.0)


@dataclass(frozen=True)
class SourceConfig:
    """Lensed-source brightness and colour model."""

    brightness_mode: str = param("catalog", "'catalog': source's own F814W magnitude + colours; 'dmag': the seeds' src_dmag relative to the LRG.", "", choices=("catalog", "dmag"))
    dmag_min: float = param(0.5, "Minimum src_dmag (source r mag minus LRG r mag) in 'dmag' mode.", "mag")
    dmag_max: float = param(2.0, "Maximum src_dmag in 'dmag' mode.", "mag")
    mag_shift: float = param(0.0, "Added to the catalog magnitude (e.g. to move sources fainter).", "mag", ge=-10.0, le=10.0)
    r_minus_i_mean: float = param(0.2, "Mean r - F814W colour (AB, observed frame, star-forming galaxies at z~1-2).", "mag")
    r_minus_i_sigma: float = param(0.15, "Scatter of r - F814W.", "mag", ge=0.0)
    g_minus_r_mean: float = param(0.3, "Mean g - r colour (AB, observed frame, star-forming z~1-2).", "mag")
    g_minus_r_sigma: float = param(0.15, "Scatter of g - r.", "mag", ge=0.0)
    r_minus_z_mean: float = param(0.55, "Mean r - z colour (AB, observed frame, star-forming z~1-2).", "mag")
    r_minus_z_sigma: float = param(0.25, "Scatter of r - z.", "mag", ge=0.0)
    colour_correlation: float = param(0.5, "Correlation coefficient of the (g-r, r-z) Gaussian (dust reddens both).", "", ge=-0.99, le=0.99)
    colour_clip_sigma: float = param(3.0, "Colours are truncated at mean +- this many sigma (redrawn).", "sigma", gt=0.0, le=10.0)
    colour_model: str = param("redshift", "'redshift': colours of a star-forming SED at the source's src_z (sources/sed.py) with the *_sigma scatter, or the bank's own g/r/z photometry when it has them; 'gaussian': the fixed means above for every source.", "", choices=("redshift", "gaussian"))
    sed_uv_slope: float = param(-1.8, "UV continuum slope beta (f_lambda ~ lambda^beta) blueward of 4000 A rest frame (star-forming galaxies z~1-3: Bouwens et al. 2014).", "", ge=-3.5, le=1.0)
    sed_break: float = param(1.3, "Flux ratio across the 4000 A break, f_nu(red)/f_nu(blue) (young star-forming populations: Kauffmann et al. 2003).", "", ge=1.0, le=3.0)
    sed_red_slope: float = param(-1.0, "Continuum slope beta (f_lambda ~ lambda^beta) redward of 4000 A rest frame.", "", ge=-3.5, le=1.0)
    redshift_policy: str = param("native", "'native': each template at its own catalogue z and magnitude; 'rescale': paltas-style size and surface-brightness rescaling to a target z (see docs/PHYSICS.md).", "", choices=("native", "rescale"))
    rescale_target_z: float = param(1.5, "Target source redshift for redshift_policy 'rescale' (at least lens_z + lens.min_dz).", "redshift", gt=0.0, le=6.0)


@dataclass(frozen=True)
class RenderConfig:
    """Arc rendering, PSF and noise (DESIGN 4)."""

    supersampling: int = param(8, "Rays per stamp pixel per axis near the arc (justified by the convergence test, docs/PHYSICS.md).", "count", ge=1, le=32)
    moffat_beta: float = param(3.5, "Moffat PSF beta.", "", gt=1.0, le=20.0)
    psf_flux_fraction: float = param(0.995, "PSF kernel must enclose at least this flux fraction.", "fraction", gt=0.5, lt=1.0)
    arc_poisson_noise: bool = param(True, "Add the arc's own Poisson noise (effective gain from the coadd invvar).", "")
    write_arc: bool = param(True, "Store the noiseless arc alone (arc_npz) in every injection row.", "")
    faint_supersampling: int = param(3, "Rays per pixel per axis where a pixel can only see the source's faint outskirts (below core_fraction of its peak).", "count", ge=1, le=32)
    core_fraction: float = param(0.03, "Template pixels at or above this fraction of the template peak are its core, traced at full supersampling.", "fraction", ge=0.0, lt=1.0)
    ray_spacing: float = param(1.3, "Largest source-plane step between a pixel's rays, per axis (1.09 = the step of ss=8 in an unlensed region, 0.262/0.03/8; 1.3: 22 % fewer rays, p99 0.53 %, docs/PHYSICS.md); magnified pixels get fewer rays, never more than supersampling; 0 = uniform supersampling.", "template pixel", ge=0.0, le=100.0)
    sky_mag_arcsec2: dict = param({"g": 22.04, "r": 20.91, "i": 20.0, "z": 18.46}, "Nominal dark-sky surface brightness per band; the arc-noise effective gain is invvar x sky (docs/PHYSICS.md).", "AB mag/arcsec^2")
