"""Build the report: one metadata pass per split (exact tables), one pixel pass over a bounded
hash-selected sample of row groups (gates and galleries), then figures, JSON and Markdown.

    result = build_report("out/dataset/demo", cfg, bank=SourceBank.open("out/bank.h5"))
    write_report(result, "out/dataset/demo/_report")
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .._version import code_version
from ..config import Config, config_hash
from ..dataset.storage import StorageOptions, filesystem_for, is_s3, join
from ..errors import DatasetError, StorageError, redact
from ..survey.maskbits import bad_bit_mask
from . import figures as figs
from . import gates as G
from .acceptance import acceptance_summary, gate_criteria, trainer_keep_ids
from .accumulate import hash64_strings
from .markdown import render_markdown
from .pixels import StampGeometry, snr_band_index
from .roles import RoleTally, classic_subset, role_gates
from .samplepass import run_pixel_pass
from .source import DatasetSource, iter_meta_batches, iter_sampled_row_groups, open_source
from .tables import META_READ_COLUMNS, STAT_COLUMNS, SplitTally

REQUIRED_COLUMNS = ("task_id", "galaxy_id", "split", "role", "cutout_ok", "stamp_npz")
ROW_GROUP_SALT = "dhs-report-rowgroups-v1"
# quantity -> (figure file, log x axis, unit)
HISTOGRAMS = {
    "arc_snr": (True, ""), "arc_snr_sum": (True, ""), "arc_snr_region": (True, ""),
    "theta_e": (False, "arcsec"), "lensed_hlr_arcsec": (False, "arcsec"), "magnification": (True, ""),
    "psf_fwhm_r": (False, "arcsec"), "arc_colour_g_r": (False, "mag"), "arc_colour_r_z": (False, "mag"),
}


@dataclass
class ReportResult:
    """The report in memory: ``data`` (what report.json holds), ``markdown``, ``figures``
    (file name -> PNG bytes) and the ``gates``."""

    data: dict
    markdown: str
    figures: dict = field(default_factory=dict)
    gates: list = field(default_factory=list)

    @property
    def failed(self) -> list:
        return [g for g in self.gates if g.status == G.FAIL]


def _check_columns(src: DatasetSource) -> None:
    for split in src.splits:
        for frag in src.dataset(split).get_fragments():
            names = set(frag.physical_schema.names)
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                raise DatasetError(f"shard {frag.path} lacks column(s) {missing} of the stamp schema (DESIGN 3.3)", path=redact(frag.path), field=missing[0])
            break  # one shard per split: the writer uses one schema


def _geometry(cfg: Config) -> StampGeometry:
    r_outer = cfg.lens.theta_e_max * (1.0 + cfg.lens.source_radius_fraction) + cfg.report.arc_margin_arcsec
    half = cfg.survey.stamp_size / 2 * cfg.survey.pixel_scale
    if r_outer >= half * math.sqrt(2) - 2 * cfg.survey.pixel_scale:
        raise DatasetError(f"the nuisance annulus starts at {r_outer:.2f} arcsec, outside a {cfg.survey.stamp_size}-pixel stamp: lower report.arc_margin_arcsec", field="report.arc_margin_arcsec")
    return StampGeometry.make(cfg.survey.stamp_size, cfg.survey.pixel_scale, r_outer, cfg.report.central_radius_arcsec, bad_bit_mask(cfg))


def _galaxy_examples(src: DatasetSource, tallies: dict, pairs: dict) -> list:
    """A few galaxy_ids found in two splits (second pass, only when the hashes overlap)."""
    hashes = {s: t.galaxy_hashes() for s, t in tallies.items()}
    shared = set()
    for p, n in pairs.items():
        if n:
            a, b = p.split("|")
            shared.update(int(h) for h in np.intersect1d(hashes[a], hashes[b])[:5])
    found: dict = {}
    for split in src.splits:
        for batch in iter_meta_batches(src, split, ["galaxy_id"]):
            ids = batch.column("galaxy_id").to_pylist()
            for gid, h in zip(ids, hash64_strings(ids), strict=True):
                if int(h) in shared:
                    found.setdefault(gid, set()).add(split)
    return [f"galaxy_id {g} in {' & '.join(sorted(s))}" for g, s in sorted(found.items()) if len(s) > 1][:5]


def _pick_gallery(ps, n: int, kept: set | None = None) -> tuple[list, list]:
    """Controls and injections the trainer keeps (accepted ones), injections spread in arc_snr."""
    controls = [d for d in ps.gallery["control"].items() if kept is None or d["task_id"] in kept][:n]
    inj = sorted([d for d in ps.gallery["injection"].items() if kept is None or d["task_id"] in kept], key=lambda d: -np.inf if d["arc_snr"] is None else d["arc_snr"])
    if len(inj) > n:
        inj = [inj[int(round(i))] for i in np.linspace(0, len(inj) - 1, n)]
    return controls, inj


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def build_report(root: str, cfg: Config, bank=None, options: StorageOptions | None = None, make_figures: bool = True, config_source: str = "given") -> ReportResult:
    """Measure a stamp dataset: tables per split, gates, figures. Never loads all stamps.
    ``config_source`` ("given" or "manifest") only words the config-hash warning."""
    src = open_source(root, options)
    _check_columns(src)
    geom = _geometry(cfg)
    rc = cfg.report

    # 1. exact tables: metadata columns only, streamed
    tallies = {}
    n_all = sum(src.rows.values())
    role_tally = RoleTally(1.0 if n_all <= rc.quantile_sample_max else rc.quantile_sample_max / n_all)
    for split in src.splits:
        t = SplitTally(split, src.rows[split], rc.quantile_sample_max)
        for batch in iter_meta_batches(src, split, META_READ_COLUMNS):
            t.update(batch)
            role_tally.update(split, batch)
        tallies[split] = t

    # 2. pixel sample: whole row groups chosen by hash, bounded by report.max_rows_sampled
    total = sum(src.rows.values())
    fraction = 1.0 if total <= rc.max_rows_sampled else rc.max_rows_sampled / total
    ps = run_pixel_pass(iter_sampled_row_groups(src, fraction, ROW_GROUP_SALT), geom, 4 * rc.gallery_size, rc.rerender_sample, snr_band_index(cfg.survey.bands))

    # 3. gates
    f = {"snr": "gate_physics_snr.png", "rerender": "gate_physics_rerender.png", "leak": "gate_leakage.png",
         "clf": "gate_shortcut_classifier.png", "central": "gate_shortcut_central_brightness.png"}
    g_snr = G.gate_snr(ps.snr_checks, ps.n_injections_without_arc, cfg, f["snr"])
    g_rr, rr_rows = G.gate_rerender(ps.rerender.items(), bank, cfg, f["rerender"])
    gal_pairs = G.overlaps({s: t.galaxy_hashes() for s, t in tallies.items()})
    examples = _galaxy_examples(src, tallies, gal_pairs) if sum(gal_pairs.values()) else []
    g_gal = G.gate_leak_galaxy(gal_pairs, {s: t.n_split_mismatch for s, t in tallies.items()}, examples, f["leak"])
    cos_sets = {s: t.cosmos for s, t in tallies.items()}
    cos_pairs = G.overlaps(cos_sets)
    g_cos = G.gate_leak_cosmos(cos_pairs, cos_sets, f["leak"])
    # the shortcut gates judge the rows the trainer keeps (ml/selection.py): what the model will see
    kept = trainer_keep_ids(src, cfg)
    feats, labels, central, subtracted = classic_subset(ps, kept)  # controls vs injections; each negative role below
    g_clf, clf_fig = G.gate_shortcut_classifier(feats, labels, cfg, f["clf"])
    g_clf.details["after_trainer_selection"] = {"rows_sampled": len(ps.task_ids), "rows_kept": sum(t in kept for t in ps.task_ids), "train.accepted_only": cfg.train.accepted_only}
    g_cen, cen_fig = G.gate_central_brightness(central, labels, subtracted, cfg, f["central"], cfg.survey.bands)
    g_roles, role_figs = role_gates(ps, cfg, cfg.survey.bands, kept)
    g_acc = gate_criteria(src, cfg)
    gates = [g_snr, g_rr, g_gal, g_cos, g_clf, g_cen, *g_roles, g_acc]
    roles_table = role_tally.table(cfg)

    # 4. tables and per-split pixel-sample shares
    split_tables = {}
    for split, t in tallies.items():
        tab = t.table()
        causes = ps.low_snr_causes.get(split, {"masked": 0, "faint": 0})
        n_arc = ps.n_inj_with_arc.get(split, 0)
        tab["arc_snr_below_1_cause"] = {
            "sampled_injections_with_arc": n_arc,
            "masked": causes["masked"], "faint": causes["faint"],
            "masked_pct": 100.0 * causes["masked"] / n_arc if n_arc else None,
            "faint_pct": 100.0 * causes["faint"] / n_arc if n_arc else None,
        }
        split_tables[split] = tab

    manifest = src.manifest or {}
    man_rows = (manifest.get("totals") or {}).get("rows_per_split") or {}
    warnings = []
    for s in src.splits:
        if s in man_rows and int(man_rows[s]) != src.rows[s]:
            warnings.append(f"split={s}: {src.rows[s]} rows read, the manifest says {man_rows[s]}")
    for s, lack in roles_table["configured_roles_missing"].items():
        warnings.append(f"split={s}: no usable row of role(s) {lack} although tasks.role_fractions gives them a share")
    if not src.manifest:
        warnings.append("no _manifest.json: the dataset is incomplete or not made by generate")
    if manifest.get("config_hash") and manifest["config_hash"] != config_hash(cfg):
        if config_source == "manifest":
            warnings.append(f"the config rebuilt from the manifest hashes to {config_hash(cfg)}, not the dataset's {manifest['config_hash']}: the config schema changed since the dataset was made (new fields take their defaults)")
        else:
            warnings.append(f"the report's config hash {config_hash(cfg)} differs from the dataset's {manifest['config_hash']}: thresholds and geometry come from the given --config")
    if ps.arc_outer_fraction and float(np.max(ps.arc_outer_fraction)) > 0.01:
        warnings.append(f"up to {100 * float(np.max(ps.arc_outer_fraction)):.2f} % of an arc's flux lies in the nuisance annulus (r >= {geom.r_outer:.2f} arcsec): raise report.arc_margin_arcsec if the classifier gate fails on outer features")

    data = {
        "dataset": redact(root),
        "code_version": code_version(),
        "dataset_code_version": manifest.get("code_version"),
        "dataset_config_hash": manifest.get("config_hash"),
        "report_config_hash": config_hash(cfg),
        "report_config": {k: getattr(rc, k) for k in rc.__dataclass_fields__},
        "splits": list(src.splits),
        "rows": dict(src.rows),
        "tables": split_tables,
        "roles": roles_table,
        "acceptance": acceptance_summary(src),
        "pixel_sample": {"row_group_fraction": fraction, "row_groups": ps.n_row_groups, "rows": ps.n_rows,
                         "annulus_r_min_arcsec": geom.r_outer, "central_radius_arcsec": geom.r_central,
                         "arc_flux_fraction_in_annulus_max": float(np.max(ps.arc_outer_fraction)) if ps.arc_outer_fraction else None,
                         "arc_flux_fraction_in_annulus_median": float(np.median(ps.arc_outer_fraction)) if ps.arc_outer_fraction else None},
        "gates": {g.name: g.to_dict() for g in gates},
        "passed": not any(g.status == G.FAIL for g in gates),
        "warnings": warnings,
    }

    figures = {}
    if make_figures:
        for name, (log_x, unit) in HISTOGRAMS.items():
            fn = f"hist_{name}.png"
            figures[fn] = figs.histograms(name, {s: t.sampled(name) for s, t in tallies.items()}, log_x=log_x, unit=unit)
        controls, inj = _pick_gallery(ps, rc.gallery_size, kept)
        figures["gallery.png"] = figs.gallery(controls, inj, rc.gallery_stretch, rc.gallery_q, f"top: controls; bottom: injections by arc_snr (g,r,z Lupton asinh, stretch {rc.gallery_stretch:g} nMgy, Q {rc.gallery_q:g})")
        figures["gallery_arcs.png"] = figs.arcs_gallery(inj, rc.gallery_arc_stretch, rc.gallery_q)
        figures["arc_snr_vs_theta_e.png"] = figs.scatter_snr_theta({s: (t.sampled("theta_e"), t.sampled("arc_snr")) for s, t in tallies.items()})
        figures[f["snr"]] = figs.snr_check(ps.snr_checks)
        figures[f["rerender"]] = figs.rerender(rr_rows, rc.rerender_rel_tol)
        figures[f["leak"]] = figs.leakage(gal_pairs, cos_pairs)
        figures[f["clf"]] = figs.shortcut(clf_fig, rc.shortcut_auc_max)
        figures[f["central"]] = figs.central(cen_fig, cfg.survey.bands)
        for kind, fn, fig in role_figs.values():
            figures[fn] = figs.shortcut(fig, rc.shortcut_auc_max) if kind == "clf" else figs.central(fig, cfg.survey.bands)
        figures["roles_brightness.png"] = figs.histograms("arc_flux_r", role_tally.sampled("arc_flux_r"), log_x=True, unit="nanomaggy")
        figures["roles_arc_snr.png"] = figs.histograms("arc_snr", role_tally.sampled("arc_snr"), log_x=True, unit="")
        figures[g_acc.figure] = figs.acceptance(data["acceptance"])
    data["figures"] = sorted(figures)
    data = _jsonable(data)
    return ReportResult(data, render_markdown(data, list(STAT_COLUMNS)), figures, gates)


def _put(url: str, payload: bytes, options: StorageOptions | None) -> None:
    fs, path = filesystem_for(url, options)
    try:
        if not is_s3(url):
            import os

            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with fs.open_output_stream(path) as out:
            out.write(payload)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot write {redact(url)}: {redact(str(exc))}", path=redact(url)) from None


def write_report(result: ReportResult, out: str, options: StorageOptions | None = None) -> dict:
    """Write report.json, report.md and figures/*.png under ``out`` (local or s3://); returns URLs."""
    urls = {"json": join(out, "report.json"), "md": join(out, "report.md")}
    _put(urls["json"], (json.dumps(result.data, indent=1, sort_keys=True) + "\n").encode(), options)
    _put(urls["md"], result.markdown.encode(), options)
    for name, png in sorted(result.figures.items()):
        _put(join(out, "figures", name), png, options)
    urls["figures"] = join(out, "figures")
    return urls
