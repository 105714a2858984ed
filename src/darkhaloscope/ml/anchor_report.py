"""The Markdown page of an anchor evaluation (``evaluation.md``), from its result dict
(``ml/evaluate_anchors.py``; split out of it to keep one job per file)."""

from __future__ import annotations

import json
import math
from pathlib import Path

FPRS = (1e-2, 1e-3, 1e-4)
P_THRESHOLDS = (0.5, 0.3)
EVAL_SETS = ("ground", "slacs_bells", "ground_other")


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render_markdown(result: dict) -> str:
    """evaluation.md text of an evaluation result dict."""
    am = result["anchors"]
    lines = [f"# Anchor evaluation: {result.get('run', '')}", "",
             f"code {result['code_version']}; anchors {result['anchor_info']['n_scored']} scored "
             f"({result['anchor_info']['n_cutout_failed']} cutouts failed); negatives {result.get('n_negatives', 0)} "
             f"({result.get('negatives_source', 'none')}).", "",
             "## Recall on real lenses", "",
             "| set | n | recall p>0.5 | recall p>0.3 | median p | max p | " + " | ".join(f"recall @FPR {f:g} (negatives above / total)" for f in FPRS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(FPRS)]
    for s, m in am["sets"].items():
        fcells = []
        for f in FPRS:
            r = m.get(f"recall_at_fpr_{f:g}")
            fcells.append("-" if r is None else f"{_fmt(r['recall'])} ({r['n_negatives_above']}/{r['n_negatives']}{'' if r['resolved'] else ', unresolved'})")
        lines.append(f"| {s} | {m['n']} | {_fmt(m.get('recall_p_gt_0.5'))} | {_fmt(m.get('recall_p_gt_0.3'))} | "
                     f"{_fmt(m.get('median_p'))} | {_fmt(m.get('max_p'))} | " + " | ".join(fcells) + " |")
    lines += ["", "`ground` is the primary set (lenses discovered in DECam imaging); `slacs_bells` were found by "
              "spectroscopy + HST and are mostly invisible at 0.262\"/px: an upper-bound comparison, not the target.", ""]
    for title, key in (("Per reference", "per_reference"), ("Per grade", "per_grade")):
        lines += [f"## {title}", "", "| key | n | recall p>0.5 | recall p>0.3 | median p |", "|---|---|---|---|---|"]
        for k, m in sorted(am[key].items(), key=lambda kv: -kv[1]["n"]):
            lines.append(f"| {k} | {m['n']} | {_fmt(m.get('recall_p_gt_0.5'))} | {_fmt(m.get('recall_p_gt_0.3'))} | {_fmt(m.get('median_p'))} |")
        lines.append("")
    for title, key in (("Top scorers", "top"), ("Bottom scorers", "bottom")):
        lines += [f"## {title}", "", "| lens | p_lens | theta_E [\"] | grade | set | references |", "|---|---|---|---|---|---|"]
        for r in am[key]:
            lines.append(f"| {r.get('name')} | {_fmt(r.get('p_lens'), 4)} | {_fmt(r.get('theta_e'), 2)} | {r.get('grade', '')} | "
                         f"{r.get('anchor_set', '')} | {r.get('references', '')} |")
        lines.append("")
    mi = result.get("metadata", {})
    if mi:
        lines += ["## Metadata", "", f"columns {mi.get('columns')}; NaNs imputed from the anchors' median: {mi.get('imputed')}; "
                  f"sources: {mi.get('sources')}.", ""]
    diags = result.get("diagnostics", {})
    if diags:
        lines += ["## Shortcut diagnostics", ""]
        for name, d in diags.items():
            lines.append(f"### {name}")
            lines.append("")
            if d.get("figure"):
                lines.append(f"![{name}]({Path(d['figure']).name})")
                lines.append("")
            lines.append("```json")
            lines.append(json.dumps(d["numbers"], indent=1)[:3000])
            lines.append("```")
            if d.get("table"):
                keys = list(d["table"][0])
                lines += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                lines += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in d["table"]]
            lines.append("")
    return "\n".join(lines) + "\n"


