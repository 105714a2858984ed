"""Typed configuration: YAML -> frozen dataclasses, validated, hashed.

Every field is declared with :func:`param`, which records its documentation, its unit and its
allowed range. :func:`load_config` rejects unknown keys and out-of-range values with a
:class:`~darkhaloscope.errors.ConfigError` naming the dotted field (``lens.theta_e_max``), before
any work starts. :func:`config_hash` is a stable hash of the resolved config (canonical JSON),
written into every output (manifest, rows, checkpoints).

Sections map one-to-one to the pipeline's stages; a YAML file only needs the keys it changes.
``python -m darkhaloscope.config`` prints every field with its unit and documentation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

SPLITS = ("train", "val", "test")
ROLES = ("control", "injection")


def param(
    default: Any,
    doc: str,
    unit: str = "",
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """Declare a config field with its documentation, unit and allowed range."""
    meta = {"doc": doc, "unit": unit, "ge": ge, "le": le, "gt": gt, "lt": lt, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """Declare a nested section field defaulting to its dataclass defaults."""
    return field(default_factory=cls, metadata={"doc": cls.__doc__ or "", "unit": ""})


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathsConfig:
    """Default locations used by the CLI when a path is not given on the command line.
    Each may be a local path or an ``s3://bucket/prefix`` URL (bricks also ``https://``)."""

    survey_root: str = param("out/survey", "Root of the DR10-layout survey (coadd/, tractor/, survey-bricks).", "path/URL")
    tasks: str = param("out/tasks", "Task table folder (Parquet).", "path/URL")
    bank: str = param("out/bank.h5", "Source bank HDF5 file.", "path/URL")
    dataset: str = param("out/dataset", "Stamp dataset root.", "path/URL")
    cache_dir: str = param("", "Local cache for remote files (bank downloads, cutout service); empty = ~/.cache/darkhaloscope.", "path")


@dataclass(frozen=True)
class SyntheticSurveyConfig:
    """The synthetic DR10-format sky made by ``build-survey`` (the embedded default and test fixture)."""

    n_bricks_ra: int = param(2, "Bricks along RA in the synthetic sky.", "count", ge=1, le=50)
    n_bricks_dec: int = param(1, "Bricks along Dec in the synthetic sky.", "count", ge=1, le=50)
    brick_size_pix: int = param(600, "Side of each synthetic brick image (DR10 is 3600).", "pixel", ge=128, le=3600)
    dec_center: float = param(10.0, "Declination of the synthetic field's first brick row centre.", "deg", ge=-80.0, le=80.0)
    ra_start: float = param(150.0, "RA of the first synthetic brick column's centre.", "deg", ge=0.0, lt=360.0)
    lrg_per_brick: int = param(150, "LRG-like galaxies per brick (before the LRG cuts).", "count", ge=0, le=100000)
    galaxies_per_brick: int = param(300, "Other galaxies per brick.", "count", ge=0, le=100000)
    stars_per_brick: int = param(60, "Stars per brick (a few bright ones get BRIGHT/MEDIUM masks).", "count", ge=0, le=100000)
    seeing_r_min: float = param(0.9, "Minimum per-brick r-band PSF FWHM.", "arcsec", gt=0.3, le=3.0)
    seeing_r_max: float = param(1.6, "Maximum per-brick r-band PSF FWHM.", "arcsec", gt=0.3, le=3.0)
    sky_sigma_r: float = param(0.006, "Per-pixel sky noise sigma in r (g, z scaled by band).", "nanomaggy", gt=0.0, le=1.0)
    tile_size: int = param(100, "Tile side of the Rice tile-compressed .fits.fz images.", "pixel", ge=16, le=3600)


@dataclass(frozen=True)
class SurveyConfig:
    """The DR10 survey layer: geometry, bands and cutouts."""

    release: int = param(10000, "Legacy Surveys release number written into synthetic catalogs (DR10 south = 10000).", "", ge=0, le=16383)
    bands: str = param("grz", "Bands cut out and injected, in channel order.", "", choices=("grz", "gr", "rz", "g", "r", "z", "griz"))
    pixel_scale: float = param(0.262, "Coadd pixel scale.", "arcsec/pixel", gt=0.0)
    stamp_size: int = param(64, "Side of every stamp.", "pixel", ge=8, le=512)
    brick_cache_size: int = param(8, "Open bricks kept per process (LRU).", "count", ge=1, le=256)
    decoded_cache_mb: float = param(256.0, "Decoded pixels kept per process for bricks other than the one being cut (LRU); peak is this plus one brick (DR10: 337 MB).", "MiB", ge=0.0)
    synthetic: SyntheticSurveyConfig = section(SyntheticSurveyConfig)


@dataclass(frozen=True)
class LrgCutsConfig:
    """DESI LRG target cuts (Zhou et al. 2023, DR9/DR10 south), on extinction-corrected magnitudes.
    Defaults are the published south cuts; north values are in the paper."""

    zfiber_max: float = param(21.6, "Faint limit on the z-band fibre magnitude.", "AB mag", ge=15.0, le=25.0)
    stellar_slope: float = param(0.8, "Star rejection: z - W1 > slope * (r - z) + intercept.", "")
    stellar_intercept: float = param(-0.6, "Star rejection intercept.", "AB mag")
    gw1_min: float = param(2.9, "Low-z removal: g - W1 > gw1_min OR r - W1 > rw1_min.", "AB mag")
    rw1_min: float = param(1.8, "Low-z removal r - W1 threshold.", "AB mag")
    sliding_slope: float = param(1.8, "Sliding cut: r - W1 > slope * (W1 - sliding_w1_pivot).", "")
    sliding_w1_pivot: float = param(17.14, "Sliding cut W1 pivot.", "AB mag")
    sliding_w1_offset: float = param(16.33, "Sliding cut: r - W1 > W1 - offset.", "AB mag")
    rw1_override: float = param(3.3, "OR r - W1 > rw1_override.", "AB mag")
    reject_maskbits: list = param([1, 12, 13], "DR10 MASKBITS bits that reject an object (BRIGHT, GALAXY, CLUSTER).", "bit numbers")
    gaia_g_min: float = param(18.0, "Stars rejected when GAIA_PHOT_G_MEAN_MAG < this (where present).", "Vega mag")
    require_nobs: bool = param(True, "Require NOBS_G/R/Z > 0.", "")
    zfibertot_min: float = param(17.5, "Stars missing from Gaia rejected: z fibre-total magnitude must exceed this (where FIBERTOTFLUX_Z exists).", "AB mag")
    require_primary: bool = param(True, "Keep only BRICK_PRIMARY objects (where the column exists).", "")


@dataclass(frozen=True)
class TasksConfig:
    """Task table: LRG selection, splits and roles."""

    split_fractions: dict = param({"train": 0.26, "val": 0.39, "test": 0.35}, "Fraction of tasks per split (sum to 1).", "fraction")
    split_salt: str = param("dhs-split-v1", "Salt of the blake2b hash of task_id that fixes the split.", "")
    role_salt: str = param("dhs-role-v1", "Salt of the blake2b hash of galaxy_id that fixes the role.", "")
    control_fraction: float = param(0.5, "Fraction of tasks that are controls (no injection).", "fraction", ge=0.0, le=1.0)
    max_tasks: int = param(0, "Keep at most this many tasks (0 = all); a deterministic hash subsample.", "count", ge=0)
    lrg: LrgCutsConfig = section(LrgCutsConfig)


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


@dataclass(frozen=True)
class GenerateConfig:
    """The Spark generate job and the stamp dataset (DESIGN 3.3)."""

    dataset_name: str = param("demo", "Folder name of the dataset under the output root.", "")
    n_partitions: int = param(4, "Spark partitions (a brick's tasks stay in one partition).", "count", ge=1, le=1000000)
    compression: str = param("gzip", "Parquet compression codec.", "", choices=("gzip", "zstd", "snappy", "none"))
    compression_level: int = param(1, "Parquet codec level (gzip 1-9; zstd 1-22). gzip 1: 0.5 % more bytes than 6, ~0.8 ms less CPU per row (docs/DATASET.md).", "", ge=1, le=22)
    row_group_rows: int = param(512, "Rows per Parquet row group (~25 MB at ~48 KB/row).", "count", ge=1)
    s3_endpoint: str = param("", "S3 endpoint override (tests: the moto server on loopback); empty = AWS.", "URL")
    s3_region: str = param("us-east-1", "S3 region.", "")
    max_task_failures_fraction: float = param(1.0, "Fail the job when more than this fraction of rows have cutout_ok=false because of exceptions.", "fraction", ge=0.0, le=1.0)


@dataclass(frozen=True)
class ReportConfig:
    """Dataset report gates and their thresholds (DESIGN 5)."""

    shortcut_auc_max: float = param(0.55, "Nuisance-feature classifier AUC above this fails the shortcut gate.", "", ge=0.5, le=1.0)
    central_ks_p_min: float = param(0.01, "Arc-subtracted host central brightness: KS p below this fails.", "", ge=0.0, le=1.0)
    rerender_rel_tol: float = param(0.01, "Re-rendered arc vs stored: max |diff| / peak above this fails.", "fraction", gt=0.0)
    snr_rel_tol: float = param(1e-4, "Recomputed vs stored SNR relative tolerance.", "fraction", gt=0.0)
    rerender_sample: int = param(50, "Injections re-rendered by the physics gate.", "count", ge=1)
    max_rows_sampled: int = param(200000, "Rows sampled (streaming, by hash) for the shortcut classifier.", "count", ge=100)
    bootstrap: int = param(200, "Bootstrap resamples for intervals.", "count", ge=10)
    gallery_size: int = param(12, "Stamps per gallery row.", "count", ge=1, le=100)
    quantile_sample_max: int = param(1000000, "Rows per split whose metadata is kept for quantiles and figures: exact below this, a hash-selected sample above (moments and counts are always exact).", "count", ge=1000)
    arc_margin_arcsec: float = param(3.0, "Nuisance (outer-annulus) pixels start at theta_e_max * (1 + source_radius_fraction) + this margin (PSF wings, source extent).", "arcsec", ge=0.0)
    central_radius_arcsec: float = param(1.0, "Radius of the central aperture for the host central brightness (arc subtracted).", "arcsec", gt=0.0)
    cv_folds: int = param(5, "Cross-validation folds of the shortcut classifier.", "count", ge=2, le=20)
    min_rows_per_role: int = param(50, "A shortcut gate with fewer sampled rows per role is reported as skipped (too few to test).", "count", ge=5)
    gallery_stretch: float = param(0.05, "Lupton asinh stretch of the g,r,z gallery composites (same for every stamp, so brightness differences stay visible).", "nanomaggy", gt=0.0)
    gallery_q: float = param(8.0, "Lupton asinh softening Q of the gallery composites.", "", gt=0.0)
    gallery_arc_stretch: float = param(0.01, "Lupton stretch of the arcs-alone gallery (arcs are faint; ~2 sky sigma in r).", "nanomaggy", gt=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """PyTorch training (ConvNeXt-Tiny + metadata head)."""

    epochs: int = param(10, "Training epochs.", "count", ge=1)
    batch_size: int = param(256, "Batch size.", "count", ge=1)
    lr: float = param(3e-4, "Peak AdamW learning rate.", "1/step", gt=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay.", "", ge=0.0)
    warmup_epochs: float = param(1.0, "Linear warm-up before the cosine schedule.", "epoch", ge=0.0)
    loss: str = param("bce", "Loss function.", "", choices=("bce", "focal"))
    focal_gamma: float = param(2.0, "Focal-loss gamma.", "", ge=0.0)
    normalization: str = param("outer_mad", "Stamp normalisation (see ml/normalize.py).", "", choices=("outer_mad", "asinh_outer", "per_band_zscore"))
    norm_clip: float = param(10.0, "Clip of normalised pixel values.", "sigma", gt=0.0)
    metadata_features: list = param(["psf_fwhm_r", "psfdepth_r"], "Row columns fed to the metadata head (standardised on train).", "")
    arc_snr_min: float = param(0.0, "Keep injections with arc_snr >= this (0 = no filter).", "", ge=0.0)
    theta_e_over_psf_min: float = param(0.0, "Keep injections with theta_e / psf_fwhm_r >= this (0 = no filter).", "", ge=0.0)
    max_rows_per_split: int = param(0, "Use at most this many rows per split (0 = all).", "count", ge=0)
    num_workers: int = param(2, "DataLoader workers.", "count", ge=0, le=64)
    select_metric: str = param("tpr_at_fpr_1e-3", "Validation metric that picks the best checkpoint.", "", choices=("auc", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "tpr_at_fpr_1e-4", "loss"))
    pretrained_weights: str = param("", "Local file of ConvNeXt-Tiny weights (never downloaded in tests).", "path")
    stem: str = param("patch2", "ConvNeXt stem for 64x64 inputs: 'patch2' (2x2 stride 2) or 'patch4' (torchvision's).", "", choices=("patch2", "patch4"))
    augment: bool = param(True, "rot90/flip augmentation.", "")
    amp_bf16: bool = param(True, "bf16 autocast on CUDA.", "")
    arc_snr_max: float = param(0.0, "Keep injections with arc_snr <= this (0 = no filter).", "", ge=0.0)
    focal_alpha: float = param(-1.0, "Focal-loss positive-class weight alpha (torchvision sigmoid_focal_loss; < 0 = unweighted).", "", le=1.0)
    shuffle_block_rows: int = param(4096, "Rows from several row groups shuffled together in each loader worker.", "count", ge=1)
    drop_path: float = param(0.1, "ConvNeXt stochastic-depth rate.", "fraction", ge=0.0, lt=1.0)
    grad_clip: float = param(1.0, "Clip the gradient norm at this (0 = off).", "", ge=0.0)
    eval_bootstrap: int = param(200, "Stratified bootstrap resamples for evaluation intervals.", "count", ge=0)
    val_split: str = param("val", "Split used to pick the best checkpoint.", "", choices=("val", "test", "train"))


@dataclass(frozen=True)
class EmrConfig:
    """AWS EMR launch settings (see emr/README.md)."""

    mode: str = param("ec2", "EMR on EC2 cluster or EMR Serverless.", "", choices=("ec2", "serverless"))
    release_label: str = param("emr-7.5.0", "EMR release (7.x ships Spark 3.5).", "")
    region: str = param("us-east-1", "AWS region.", "")
    bucket: str = param("", "S3 bucket for code, environment archive, logs and output.", "")
    prefix: str = param("darkhaloscope", "Key prefix in the bucket.", "")
    instance_type: str = param("m5.2xlarge", "Core/task instance type.", "")
    master_instance_type: str = param("m5.xlarge", "Primary node instance type.", "")
    core_instances: int = param(10, "Core instances (on-demand capacity units).", "count", ge=0)
    spot_instances: int = param(24, "Task instances on spot.", "count", ge=0)
    vcpus_per_instance: int = param(8, "vCPUs per instance of instance_type.", "count", ge=1)
    hourly_price_usd: float = param(0.384, "On-demand hourly price of instance_type.", "USD/hour", ge=0.0)
    spot_discount: float = param(0.6, "Spot price discount fraction.", "fraction", ge=0.0, le=1.0)
    service_role: str = param("EMR_DefaultRole", "EMR service role.", "")
    job_flow_role: str = param("EMR_EC2_DefaultRole", "EC2 instance profile.", "")
    execution_role_arn: str = param("", "EMR Serverless job execution role ARN.", "")
    application_id: str = param("", "Existing EMR Serverless application id (empty = create).", "")
    subnet_ids: list = param([], "Subnets for the instance fleets.", "")
    spot_instance_types: list = param(["m5.2xlarge", "m5a.2xlarge", "m5d.2xlarge", "m6i.2xlarge"], "Spot task-fleet instance types (same vCPU count as instance_type; diversified for capacity).", "")
    master_hourly_price_usd: float = param(0.192, "On-demand hourly price of master_instance_type.", "USD/hour", ge=0.0)
    emr_fee_fraction: float = param(0.25, "EMR service fee as a fraction of the on-demand EC2 price (m5 family: 0.25).", "fraction", ge=0.0, le=1.0)
    executor_cores: int = param(4, "Cores per Spark executor (one Python worker per core).", "count", ge=1, le=64)
    executor_memory_gb: int = param(7, "Spark executor JVM heap.", "GiB", ge=1, le=512)
    executor_overhead_gb: int = param(4, "Executor memory overhead (holds the Python workers: bank, bricks, rendering).", "GiB", ge=1, le=512)
    parallel_efficiency: float = param(0.8, "Fraction of cluster vCPU time spent on stamps (stragglers, S3 I/O, scheduling).", "fraction", gt=0.0, le=1.0)
    startup_minutes: float = param(12.0, "Cluster provisioning + bootstrap + step start-up time added to the wall-time estimate.", "minute", ge=0.0)
    target_shard_mb: float = param(128.0, "Target Parquet shard (= partition) size used by `emr plan`.", "MB", gt=0.0)
    python: str = param("archive", "Python runtime on the cluster: venv-pack 'archive' (spark.archives) or a Serverless custom 'image'.", "", choices=("archive", "image"))
    python_prefix: str = param("/usr", "Prefix of the Python 3.11 interpreter on the nodes (EMR 7.1+: /usr/bin/python3.11); the archive's bin/python links there.", "path")
    serverless_image_uri: str = param("", "ECR image for EMR Serverless when python = 'image' (see emr/serverless/Dockerfile).", "")
    serverless_max_vcpu: int = param(400, "EMR Serverless application maximum capacity.", "vCPU", ge=1)
    catalogs: str = param("", "Sweep/tractor catalogs root read by the build-tasks step (s3://).", "URL")
    steps: list = param(["build-tasks", "generate", "report"], "Steps run by `emr launch`, in order (subset of build-tasks, generate, report).", "")
    resume: bool = param(True, "Pass --resume to generate (a retried run keeps finished shards).", "")
    poll_initial_seconds: float = param(15.0, "First wait between status polls (doubles each poll).", "s", gt=0.0)
    poll_max_seconds: float = param(300.0, "Longest wait between status polls.", "s", gt=0.0)


@dataclass(frozen=True)
class Config:
    """The whole darkhaloscope configuration."""

    seed: int = param(12345, "Global seed: every task's random stream is seeded by (seed, task_id).", "", ge=0, le=2**63 - 1)
    paths: PathsConfig = section(PathsConfig)
    survey: SurveyConfig = section(SurveyConfig)
    tasks: TasksConfig = section(TasksConfig)
    bank: BankConfig = section(BankConfig)
    lens: LensConfig = section(LensConfig)
    source: SourceConfig = section(SourceConfig)
    render: RenderConfig = section(RenderConfig)
    generate: GenerateConfig = section(GenerateConfig)
    report: ReportConfig = section(ReportConfig)
    train: TrainConfig = section(TrainConfig)
    emr: EmrConfig = section(EmrConfig)


# --------------------------------------------------------------------------------------------
# Loading, validation, hashing
# --------------------------------------------------------------------------------------------


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _check_value(name: str, value: Any, f: dataclasses.Field, tp: Any) -> Any:
    meta = f.metadata
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config field '{name}' must be true or false, got {value!r}", field=name)
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config field '{name}' must be an integer, got {value!r}", field=name)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config field '{name}' must be a number, got {value!r}", field=name)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"config field '{name}' must be finite, got {value!r}", field=name)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config field '{name}' must be a string, got {value!r}", field=name)
    elif tp is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config field '{name}' must be a list, got {value!r}", field=name)
    elif tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config field '{name}' must be a mapping, got {value!r}", field=name)
    unit = f" {meta.get('unit')}" if meta.get("unit") else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, ok, word in (
            ("ge", lambda v, b: v >= b, ">="),
            ("le", lambda v, b: v <= b, "<="),
            ("gt", lambda v, b: v > b, ">"),
            ("lt", lambda v, b: v < b, "<"),
        ):
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                raise ConfigError(
                    f"config field '{name}' = {value}{unit} is out of range: must be {word} {bound}{unit}",
                    field=name,
                )
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config field '{name}' = {value!r} is not one of {list(choices)}", field=name)
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {type(data).__name__}", field=prefix or "<root>")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(f"'{prefix + k}'" for k in unknown)
        raise ConfigError(
            f"unknown config key(s) {names}; known keys here: {sorted(fields)}",
            field=prefix + str(unknown[0]),
        )
    kwargs = {}
    for name, f in fields.items():
        tp = hints[name]
        full = prefix + name
        if _is_section(tp):
            kwargs[name] = _build(tp, data.get(name), full + ".")
        elif name in data:
            kwargs[name] = _check_value(full, data[name], f, tp)
    return cls(**kwargs)


def _cross_checks(cfg: Config) -> None:
    fr = cfg.tasks.split_fractions
    if set(fr) != set(SPLITS):
        raise ConfigError(f"config field 'tasks.split_fractions' must have exactly the keys {list(SPLITS)}, got {sorted(fr)}", field="tasks.split_fractions")
    for k, v in fr.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ConfigError(f"config field 'tasks.split_fractions.{k}' must be a fraction in [0, 1], got {v!r}", field=f"tasks.split_fractions.{k}")
    if abs(sum(fr.values()) - 1.0) > 1e-9:
        raise ConfigError(f"config field 'tasks.split_fractions' must sum to 1, sums to {sum(fr.values()):.6g}", field="tasks.split_fractions")
    pairs = [
        ("lens.theta_e_min", cfg.lens.theta_e_min, "lens.theta_e_max", cfg.lens.theta_e_max),
        ("bank.hlr_min", cfg.bank.hlr_min, "bank.hlr_max", cfg.bank.hlr_max),
        ("bank.mag_min", cfg.bank.mag_min, "bank.mag_max", cfg.bank.mag_max),
        ("bank.zphot_min", cfg.bank.zphot_min, "bank.zphot_max", cfg.bank.zphot_max),
        ("source.dmag_min", cfg.source.dmag_min, "source.dmag_max", cfg.source.dmag_max),
        ("survey.synthetic.seeing_r_min", cfg.survey.synthetic.seeing_r_min, "survey.synthetic.seeing_r_max", cfg.survey.synthetic.seeing_r_max),
        ("bank.procedural.n_knots_min", cfg.bank.procedural.n_knots_min, "bank.procedural.n_knots_max", cfg.bank.procedural.n_knots_max),
    ]
    for lo_name, lo, hi_name, hi in pairs:
        if lo > hi:
            raise ConfigError(f"config field '{lo_name}' = {lo} must not exceed '{hi_name}' = {hi}", field=lo_name)


def config_from_dict(data: dict | None) -> Config:
    """Build and validate a :class:`Config` from a plain mapping (missing keys take defaults)."""
    cfg = _build(Config, data or {}, "")
    _cross_checks(cfg)
    return cfg


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Load a YAML config file, apply dotted ``overrides`` ({'lens.theta_e_max': 2.0}), validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", field="<file>", path=str(path))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}", field="<file>", path=str(path)) from None
    for dotted, value in (overrides or {}).items():
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return config_from_dict(data)


def config_to_dict(cfg: Any) -> dict:
    """The resolved config as plain JSON-able data (every field, defaults included)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# Where and how fast a run executes, not what it makes: left out of the hash, so the same data
# config run on 2 or 7 partitions, or against another endpoint, gives identical rows.
EXECUTION_ONLY_FIELDS = (
    "paths",
    "generate.n_partitions",
    "generate.s3_endpoint",
    "generate.s3_region",
    "survey.brick_cache_size",
    "survey.decoded_cache_mb",
    "train.num_workers",
)


def config_hash(cfg: Config) -> str:
    """Stable 16-hex-digit hash of the resolved config (sha256 of canonical JSON), without
    :data:`EXECUTION_ONLY_FIELDS`. The full resolved config is still written beside every output."""
    data = config_to_dict(cfg)
    for dotted in EXECUTION_ONLY_FIELDS:
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node.pop(leaf, None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def replace(cfg: Any, **changes: Any) -> Any:
    """Return a copy of a config (or section) with fields changed; dotted names reach into sections."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        flat[head] = replace(getattr(cfg, head), **sub)
    data = config_to_dict(dataclasses.replace(cfg, **flat))
    if isinstance(cfg, Config):
        return config_from_dict(data)
    return dataclasses.replace(cfg, **flat)


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str, Any]]:
    """(dotted name, unit, documentation, default) for every field, for docs and ``--help``."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_section(tp):
            rows.extend(describe(tp, prefix + f.name + "."))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((prefix + f.name, f.metadata.get("unit", ""), f.metadata.get("doc", ""), default))
    return rows


if __name__ == "__main__":  # pragma: no cover - documentation helper
    for name, unit, doc, default in describe():
        print(f"{name:45s} {unit:14s} {default!r:28s} {doc}")

