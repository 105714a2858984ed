"""Config sections of the generate job and the report (DESIGN 3.3, 5)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param


@dataclass(frozen=True)
class GenerateConfig:
    """The Spark generate job and the stamp dataset (DESIGN 3.3)."""

    dataset_name: str = param("demo", "Folder name of the dataset under the output root.", "")
    n_partitions: int = param(4, "Spark partitions (a brick's tasks stay in one partition).", "count", ge=1, le=1000000)
    compression: str = param("gzip", "Parquet compression codec.", "", choices=("gzip", "zstd", "snappy", "none"))
    compression_level: int = param(1, "Parquet codec level (gzip 1-9; zstd 1-22). gzip 1: 0.5 % more bytes than 6, ~0.8 ms less CPU per row (docs/DATASET.md).", "", ge=1, le=22)
    blob_compression: str = param("zstd", "Parquet codec of the pixel columns (stamp_npz, arc_npz; the other columns use `compression`): "
                                  "their integers are already RICE_1-coded (stamp format 3), and zstd 1 shrinks the fixed-size addend plane "
                                  "at ~0.1 ms per row where gzip 1 took ~0.6 ms (docs/DATASET.md); 'same' = `compression`.", "",
                                  choices=("same", "gzip", "zstd", "snappy", "none"))
    blob_compression_level: int = param(-1, "Level of `blob_compression` when it is its own codec (zstd -7..22, negative = zstd's fast levels; gzip 1-9). "
                                         "zstd -1 writes the pixel columns ~25 % faster than zstd 1 at the same size (+0.04 %), since their "
                                         "RICE-coded integers do not compress and their zeros do at any level (docs/DATASET.md).", "", ge=-7, le=22)
    row_group_rows: int = param(512, "Rows per Parquet row group (~17 MB at ~33 KB/row).", "count", ge=1)
    s3_endpoint: str = param("", "S3 endpoint override (tests: the moto server on loopback); empty = AWS.", "URL")
    s3_region: str = param("us-east-1", "S3 region.", "")
    max_task_failures_fraction: float = param(1.0, "Fail the job when more than this fraction of rows have cutout_ok=false because of exceptions.", "fraction", ge=0.0, le=1.0)


@dataclass(frozen=True)
class StageConfig:
    """The stage job: positions + survey -> host table (real cutouts read once; docs/DATASET.md).
    It shares ``generate``'s partitions, Parquet settings and S3 endpoint."""

    name: str = param("hosts", "Folder name of the host table under the stage output root.", "")
    http_max_connections: int = param(4, "Concurrent HTTP(S) connections to a brick mirror per worker process (a keep-alive pool; further requests wait).", "count", ge=1, le=64)
    http_retries: int = param(5, "Retries of an HTTP request answered 429/5xx or cut off (reset, timeout, short read) before the file counts as unreadable.", "count", ge=0, le=20)
    http_backoff_s: float = param(0.5, "First retry delay; doubles each retry (a Retry-After header, capped at 60 s, wins when longer).", "s", ge=0.0, le=60.0)
    http_timeout_s: float = param(30.0, "Socket timeout of one HTTP request.", "s", gt=0.0, le=600.0)


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
