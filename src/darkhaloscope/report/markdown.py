"""report.md: the gates first, then the seeds' section-4 tables per split, then the figures."""

from __future__ import annotations

STAT_ROWS = ("min", "max", "mean", "median", "std", "p5", "p25", "p50", "p75", "p95")
STAT_TITLES = {
    "arc_snr": "arc_snr (peak per-pixel SNR; injections with cutout_ok)",
    "arc_snr_sum": "arc_snr_sum (integrated SNR)",
    "arc_snr_region": "arc_snr_region (brightest connected SNR > 1 region)",
    "theta_e": "theta_E [arcsec]",
    "lensed_hlr_arcsec": "lensed_hlr_arcsec [arcsec]",
    "magnification": "magnification",
    "arc_colour_g_r": "arc colour g - r [mag]",
    "arc_colour_r_z": "arc colour r - z [mag]",
    "psf_fwhm_r": "r-band PSF FWHM [arcsec] (every row with cutout_ok)",
}


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if pct:
        return f"{v:.2f}%"
    return f"{v:.4g}"


def _table(header: list, rows: list) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def render_markdown(data: dict, stat_columns: list) -> str:
    splits = data["splits"]
    T = data["tables"]
    lines = [f"# Dataset report: `{data['dataset']}`", ""]
    lines.append(f"Dataset config hash `{data.get('dataset_config_hash')}`, code `{data.get('dataset_code_version')}`; report code `{data['code_version']}`, thresholds from config hash `{data['report_config_hash']}`.")
    ps = data["pixel_sample"]
    lines.append(f"Pixel sample: {ps['rows']:,} stamps in {ps['row_groups']} row groups (row-group fraction {ps['row_group_fraction']:.4g}); nuisance annulus r >= {ps['annulus_r_min_arcsec']:.2f} arcsec, central aperture r <= {ps['central_radius_arcsec']:.2f} arcsec.")
    lines.append("")
    verdict = "**ALL GATES PASS**" if data["passed"] else "**GATES FAILED**"
    lines += ["## Gates", "", verdict + " (a skipped gate is not a pass).", ""]
    rows = []
    for name, g in data["gates"].items():
        status = {"pass": "PASS", "fail": "**FAIL**", "skipped": "skipped"}[g["status"]]
        rows.append([name, status, _fmt(g["value"]), _fmt(g["threshold"]), f"[{g['figure']}](figures/{g['figure']})" if g["figure"] else "-", g["message"].replace("|", "/")])
    lines += _table(["gate", "status", "value", "threshold", "figure", "message"], rows)
    if data["warnings"]:
        lines += ["Warnings:", ""] + [f"- {w}" for w in data["warnings"]] + [""]

    lines += _acceptance(data.get("acceptance") or {})
    lines += ["## 1. Overall statistics", ""]
    rows = [
        ["Rows"] + [_fmt(T[s]["rows"]) for s in splits],
        ["Cutout OK %"] + [_fmt(T[s]["cutout_ok_pct"], True) for s in splits],
        ["Control %"] + [_fmt(T[s]["control_pct"], True) for s in splits],
        ["Injection %"] + [_fmt(T[s]["injection_pct"], True) for s in splits],
        ["Injections with cutout_ok"] + [_fmt(T[s]["injections_ok"]) for s in splits],
        ["COSMOS unique indices"] + [_fmt(T[s]["unique_cosmos_indices"]) for s in splits],
        ["arc_snr < 1 (or null) %"] + [_fmt(T[s]["arc_snr_below_1_pct"], True) for s in splits],
        ["  of which masked % (pixel sample)"] + [_fmt(T[s]["arc_snr_below_1_cause"]["masked_pct"], True) for s in splits],
        ["  of which faint % (pixel sample)"] + [_fmt(T[s]["arc_snr_below_1_cause"]["faint_pct"], True) for s in splits],
        ["theta_E < r PSF FWHM %"] + [_fmt(T[s]["theta_e_below_psf_fwhm_r_pct"], True) for s in splits],
        ["Quantile sample fraction"] + [_fmt(T[s]["quantile_sample_fraction"]) for s in splits],
    ]
    lines += _table(["Metric"] + splits, rows)

    for k, col in enumerate(stat_columns, start=2):
        lines += [f"## {k}. {STAT_TITLES.get(col, col)}", ""]
        st = {s: T[s]["stats"][col] for s in splits}
        rows = [["n"] + [_fmt(st[s]["n"]) for s in splits], ["null"] + [_fmt(st[s]["n_null"]) for s in splits]]
        rows += [[r.upper() if r.startswith("p") else r.capitalize()] + [_fmt(st[s][r]) for s in splits] for r in STAT_ROWS]
        for key in sorted(k2 for k2 in st[splits[0]] if k2.startswith("pct_gt_")):
            rows.append([f"> {key[len('pct_gt_'):]}"] + [_fmt(st[s][key], True) for s in splits])
        lines += _table(["Statistic"] + splits, rows)
        lines += [f"![{col}](figures/hist_{col}.png)", ""]

    lines += ["## Controls vs injections (means over rows with cutout_ok)", ""]
    keys = list(T[splits[0]]["balance"])
    lines += _table(["Column"] + splits, [[k] + [_fmt(T[s]["balance"][k]) for s in splits] for k in keys])

    lines += ["## Figures", ""]
    for name in data.get("figures", []):
        lines.append(f"- [{name}](figures/{name})")
    lines += ["", "![gallery](figures/gallery.png)", "", "![arcs](figures/gallery_arcs.png)", "", "![arc_snr vs theta_E](figures/arc_snr_vs_theta_e.png)", ""]
    return "\n".join(lines)


def _acceptance(a: dict) -> list[str]:
    """The generation-time acceptance section (report/acceptance.py)."""
    if not a.get("available"):
        return []
    lines = ["## Acceptance at generation", "",
             f"{a['accepted']:,} of {a['injections']:,} injections accepted ({_fmt(100 * a['acceptance_rate'], True)}), "
             f"mean n_tries {_fmt(a['mean_n_tries'])}; Spearman(theta_E, host flux_r) = {_fmt(a['spearman_theta_e_vs_host_flux_r'])}.", ""]
    rows = []
    for key, label in (("by_theta_e", "theta_E (arcsec)"), ("by_psf_fwhm_r", "PSF FWHM r (arcsec)"), ("by_psfdepth_r", "psfdepth r (1/nMgy^2)")):
        for b in a.get(key, []):
            rows.append([label, f"{b['range'][0]:.3g} - {b['range'][1]:.3g}", _fmt(b["n"]), _fmt(None if b["acceptance_rate"] is None else 100 * b["acceptance_rate"], True), _fmt(b["mean_n_tries"])])
    lines += _table(["quantity", "tertile", "n", "accepted", "mean n_tries"], rows)
    if a.get("failure_reasons"):
        lines += ["Why the unaccepted failed (last try): " + "; ".join(f"{k}: {v}" for k, v in a["failure_reasons"].items()), ""]
    return lines
