"""The stamp dataset's Parquet schema (DESIGN 3.3): one row per task, controls included.

Units: fluxes in nanomaggies, angles and sizes in arcsec, positions in arcsec from the stamp
centre (``lens_x``/``lens_y``/``src_x``/``src_y``, lenstronomy's x = +column, y = +row),
PSF FWHM in arcsec, ``psfdepth_*`` in 1/nanomaggy^2 (DR10's inverse-variance depth), ``lens_sigma_v``
in km/s, redshifts dimensionless. ``accepted`` / ``n_tries`` / ``accept_*`` / ``arc_snr_region_g|r``
say whether and after how many source draws the injection met the ``accept`` criteria, with each
criterion's value (physics/trials.py).
Columns that do not apply to a row (lens and arc columns of controls, SNRs of a stamp without
good pixels) are null, never NaN.
"""

from __future__ import annotations

import pyarrow as pa

from .arrow_rows import BlobScratch, table_from_rows

STAMP_COLUMNS = ("stamp_npz", "arc_npz")

_F32 = pa.float32()
_F64 = pa.float64()

FIELDS: list[pa.Field] = [
    # identity
    pa.field("task_id", pa.int64(), nullable=False),
    pa.field("galaxy_id", pa.string(), nullable=False),
    pa.field("brickname", pa.string(), nullable=False),
    pa.field("ra", _F64, nullable=False),
    pa.field("dec", _F64, nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    # pixels
    pa.field("stamp_npz", pa.binary()),
    pa.field("arc_npz", pa.binary()),
    # cutout
    pa.field("cutout_ok", pa.bool_(), nullable=False),
    pa.field("cutout_reason", pa.string()),
    pa.field("psf_fwhm_g", _F32),
    pa.field("psf_fwhm_r", _F32),
    pa.field("psf_fwhm_z", _F32),
    pa.field("psfdepth_g", _F32),
    pa.field("psfdepth_r", _F32),
    pa.field("psfdepth_z", _F32),
    pa.field("flux_g", _F32),
    pa.field("flux_r", _F32),
    pa.field("flux_z", _F32),
    # lens
    pa.field("theta_e", _F32),
    pa.field("lens_e1", _F32),
    pa.field("lens_e2", _F32),
    pa.field("shear_g1", _F32),
    pa.field("shear_g2", _F32),
    pa.field("lens_x", _F32),
    pa.field("lens_y", _F32),
    # role: the training label (config.ROLE_LABELS, filled from `role` by rows_to_table) and the
    # parameters of what a non-lensing painted role drew (roles.py; null for other roles):
    # lookalike_kind is 'companion' for unlensed rows, a physics.lookalikes kind for ring rows;
    # lookalike_x/y the centre (arcsec from the stamp centre), radius (arcsec; the companion's
    # distance from the host centre), width (Gaussian sigma, arcsec), q, pa_deg, span_deg and
    # phase_deg (deg), pitch_deg (deg), arms (arms or shells), clumps, clump_fraction, seed (the
    # clumps' places), ref_theta_e (arcsec: the task's would-be injection's Einstein radius that
    # set the sizes and brightness).
    pa.field("label", pa.int8(), nullable=False),
    pa.field("lookalike_kind", pa.string()),
    pa.field("lookalike_x", _F32),
    pa.field("lookalike_y", _F32),
    pa.field("lookalike_radius", _F32),
    pa.field("lookalike_width", _F32),
    pa.field("lookalike_q", _F32),
    pa.field("lookalike_pa_deg", _F32),
    pa.field("lookalike_span_deg", _F32),
    pa.field("lookalike_phase_deg", _F32),
    pa.field("lookalike_pitch_deg", _F32),
    pa.field("lookalike_arms", pa.int16()),
    pa.field("lookalike_clumps", pa.int16()),
    pa.field("lookalike_clump_fraction", _F32),
    pa.field("lookalike_seed", pa.int64()),
    pa.field("ref_theta_e", _F32),
    # source
    pa.field("cosmos_index", pa.int32()),
    pa.field("cosmos_ident", pa.string()),
    pa.field("src_x", _F32),
    pa.field("src_y", _F32),
    pa.field("src_rotation_deg", _F32),
    pa.field("src_flip", pa.bool_()),
    pa.field("src_mag_g", _F32),
    pa.field("src_mag_r", _F32),
    pa.field("src_mag_z", _F32),
    pa.field("src_dmag", _F32),
    pa.field("brightness_mode", pa.string()),
    pa.field("source_hlr_arcsec", _F32),
    # arc
    pa.field("arc_flux_g", _F32),
    pa.field("arc_flux_r", _F32),
    pa.field("arc_flux_z", _F32),
    pa.field("arc_snr", _F32),
    pa.field("arc_snr_sum", _F32),
    pa.field("arc_snr_region", _F32),
    pa.field("snr_reason", pa.string()),
    pa.field("lensed_hlr_arcsec", _F32),
    pa.field("magnification", _F32),
    # population and acceptance (physics/trials.py; docs/PHYSICS.md): null for controls
    pa.field("lens_z", _F32),
    pa.field("lens_z_kind", pa.string()),
    pa.field("lens_sigma_v", _F32),
    pa.field("lens_sigma_v_kind", pa.string()),
    pa.field("theta_e_policy", pa.string()),
    pa.field("theta_e_status", pa.string()),
    pa.field("lens_e_kind", pa.string()),
    pa.field("src_z", _F32),
    pa.field("accepted", pa.bool_()),
    pa.field("n_tries", pa.int16()),
    pa.field("accept_reason", pa.string()),
    pa.field("accept_magnification", _F32),
    pa.field("arc_snr_region_g", _F32),
    pa.field("arc_snr_region_r", _F32),
    pa.field("accept_resolvability", _F32),
    pa.field("accept_contrast", _F32),
    # provenance
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("supersampling", pa.int16()),
    pa.field("config_hash", pa.string(), nullable=False),
    pa.field("code_version", pa.string(), nullable=False),
]

STAMP_SCHEMA = pa.schema(FIELDS)
COLUMN_NAMES = tuple(f.name for f in FIELDS)
# Every column a light-weight reader wants: everything but the pixel blobs.
META_COLUMNS = tuple(n for n in COLUMN_NAMES if n not in STAMP_COLUMNS)


def rows_to_table(rows: list[dict], scratch: BlobScratch | None = None) -> pa.Table:
    """Arrow table of stamp rows (dicts keyed by column name; missing keys are null), built
    column by column (dataset/arrow_rows.py: the pixel blobs in one copy each, into ``scratch``'s
    memory when given: the table is then valid until ``scratch.release()``).
    ``label`` is filled from ``role`` (``ids.label_of``) where a row leaves it unset."""
    from ..ids import label_of  # ids imports config only; late so schema stays import-light

    labels = [label_of(row.get("role")) if row.get("label") is None else int(row["label"]) for row in rows]
    return table_from_rows(rows, STAMP_SCHEMA, {"label": labels}, scratch)
