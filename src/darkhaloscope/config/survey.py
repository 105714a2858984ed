"""Config sections of the survey layer: paths, the DR10 survey, the synthetic sky, LRG cuts, tasks."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import HASHED_ROLES, SPLITS, param, section


@dataclass(frozen=True)
class PathsConfig:
    """Default locations used by the CLI when a path is not given on the command line.
    Each may be a local path or an ``s3://bucket/prefix`` URL (bricks also ``https://``)."""

    survey_root: str = param("out/survey", "Root of the DR10-layout survey (coadd/, tractor/, survey-bricks).", "path/URL")
    tasks: str = param("out/tasks", "Task table folder (Parquet).", "path/URL")
    bank: str = param("out/bank.h5", "Source bank HDF5 file.", "path/URL")
    dataset: str = param("out/dataset", "Stamp dataset root.", "path/URL")
    hosts: str = param("out/hosts", "Host table root: stage writes <hosts>/<stage.name>, generate --hosts reads it.", "path/URL")
    cache_dir: str = param("", "Local cache for remote files (bank downloads, cutout service); empty = ~/.cache/darkhaloscope.", "path")


@dataclass(frozen=True)
class SyntheticSurveyConfig:
    """The synthetic DR10-format sky made by ``build-survey`` (the embedded default and test fixture)."""

    n_bricks_ra: int = param(2, "Bricks along RA in the synthetic sky.", "count", ge=1, le=50)
    n_bricks_dec: int = param(1, "Bricks along Dec in the synthetic sky.", "count", ge=1, le=50)
    brick_size_pix: int = param(600, "Side of each synthetic brick image (DR10 is 3600).", "pixel", ge=128, le=3600)
    brick_overlap_pix: int = param(0, "Pixels each synthetic brick image reaches beyond its primary (unique) area on every side, as DR10's do (3600 px images on a 0.25 deg grid: ~82 px; legacypipe runbrick.py flags those pixels NPRIMARY); a stamp centred in its brick's primary area then never crosses the image edge when this is >= stamp_size / 2. 0 = bricks tile the field without overlap.", "pixel", ge=0, le=1024)
    dec_center: float = param(10.0, "Declination of the synthetic field's first brick row centre.", "deg", ge=-80.0, le=80.0)
    ra_start: float = param(150.0, "RA of the first synthetic brick column's centre.", "deg", ge=0.0, lt=360.0)
    lrg_per_brick: int = param(150, "LRG-like galaxies per brick before the LRG cuts (density = this / brick_size_pix^2; DR10: ~600 per deg^2 pass the cuts, ~37 per 3600 px brick).", "count", ge=0, le=100000)
    lrg_min_separation_pix: float = param(0.0, "Hard core between LRG centres (Matern II thinning; 0 = Poisson): lets a small demo sky hold many LRGs while no stamp holds a second one.", "pixel", ge=0.0, lt=256.0)
    galaxies_per_brick: int = param(300, "Other galaxies per brick (r 19-23.5; DR10-like: ~8,000 per deg^2).", "count", ge=0, le=100000)
    stars_per_brick: int = param(60, "Stars per brick (r 10-22; DR10-like at b ~ 45 deg: ~1,500 per deg^2, a few get BRIGHT/MEDIUM masks).", "count", ge=0, le=100000)
    seeing_r_min: float = param(0.9, "Minimum per-brick r-band PSFSIZE (DR10 convention: FWHM of the Gaussian with the PSF's Neff).", "arcsec", gt=0.3, le=3.0)
    seeing_r_max: float = param(1.6, "Maximum per-brick r-band PSFSIZE (DR10 convention).", "arcsec", gt=0.3, le=3.0)
    sky_sigma_r: float = param(0.0025, "Per-pixel sky noise sigma in r (g, z scaled by band); real DR10 south r stamps: 0.002-0.003.", "nanomaggy", gt=0.0, le=1.0)
    tile_size: int = param(100, "Tile side of the compressed coadd files (DR10 writes 100; other values for tests).", "pixel", ge=16, le=3600)
    write_maps: bool = param(True, "Also write the nexp, depth, galdepth and psfsize maps per band, as DR10 does (no stage reads them).", "")
    workers: int = param(0, "Processes rendering bricks in build-survey (0 = one per CPU from 4 bricks up, else 1; the files are the same for any number).", "count", ge=0, le=64)


@dataclass(frozen=True)
class SurveyConfig:
    """The DR10 survey layer: geometry, bands and cutouts."""

    release: int = param(10000, "Legacy Surveys release number written into synthetic catalogs (DR10 south = 10000).", "", ge=0, le=16383)
    bands: str = param("grz", "Bands cut out and injected, in channel order.", "", choices=("grz", "gr", "rz", "g", "r", "z", "griz"))
    pixel_scale: float = param(0.262, "Coadd pixel scale.", "arcsec/pixel", gt=0.0)
    stamp_size: int = param(64, "Side of every stamp.", "pixel", ge=8, le=512)
    brick_cache_size: int = param(8, "Open bricks kept per process (LRU).", "count", ge=1, le=256)
    bad_maskbits: list = param(
        ["BRIGHT", "SATUR_G", "SATUR_R", "SATUR_Z", "SATUR_I", "ALLMASK_G", "ALLMASK_R", "ALLMASK_Z", "ALLMASK_I", "MEDIUM", "GALAXY", "CLUSTER"],
        "DR10 MASKBITS names that make a pixel bad for SNRs, masks and the report (survey/maskbits.py; NPRIMARY, WISEM1/2, BAILOUT, SUB_BLOB do not spoil an optical pixel).",
        "bit names")
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
    control_fraction: float = param(0.5, "Legacy two-role mix: fraction of controls, the rest injections; used only when role_fractions is empty (setting both is an error).", "fraction", ge=0.0, le=1.0)
    role_fractions: dict = param({}, "Mix of the hashed roles (control, injection, unlensed, ring), summing to 1: either {role: fraction} for every split, or {all: {...}, train|val|test: {...}} with whole per-split mixes overriding 'all'; empty = {control: control_fraction, injection: rest}.", "fraction")
    region_nside: int = param(32, "HEALPix nside (nested) of the sky regions that split real stamps (known lenses, impostors): 32 = 3.36 deg^2 cells.", "", choices=(4, 8, 16, 32, 64, 128, 256))
    region_salt: str = param("dhs-region-v1", "Salt of the blake2b hash of a region's HEALPix cell that fixes the split of its real stamps.", "")
    region_split_fractions: dict = param({"train": 0.5, "val": 0.1, "test": 0.4}, "Fraction of sky regions per split for known lenses and impostors (sum to 1); test regions hold the evaluation anchors.", "fraction")
    anchor_exclusion_arcsec: float = param(2.0, "A known lens or impostor within this distance of an evaluation anchor goes to the test split whatever its region.", "arcsec", gt=0.0, le=60.0)
    max_tasks: int = param(0, "Keep at most this many tasks (0 = all); a deterministic hash subsample.", "count", ge=0)
    lrg: LrgCutsConfig = section(LrgCutsConfig)

    def role_mix(self, split: str) -> dict[str, float]:
        """The role fractions of one split, in :data:`HASHED_ROLES` order (missing roles 0)."""
        rf = self.role_fractions
        if not rf:
            mix = {"control": self.control_fraction, "injection": 1.0 - self.control_fraction}
        elif set(rf) <= set(HASHED_ROLES) or not set(rf) & {"all", *SPLITS}:
            mix = rf
        else:
            mix = rf.get(split, rf.get("all", {}))
        return {r: float(mix.get(r, 0.0)) for r in HASHED_ROLES}

