"""Per-role evaluation: what each role scores at the operating points set on controls.

Thresholds come from the controls alone (FPR 1e-2, 1e-3, 1e-4, the rule of
:func:`metrics.tpr_at_fpr`: a row is called a lens when its score is strictly above the
threshold), then every other role is scored against them:

- negative roles (``unlensed``, ``ring``, ``impostor``): their false-positive rate, with a
  Wilson 95 % interval. A finder that answers to "something ring- or blob-like near an LRG"
  passes controls and fails these (Canameras et al. 2020, A&A 644, A163, sec. 3.2).
- the seeds' ring test as a number: the share of ``ring`` stamps above the control threshold
  at FPR 1e-3 (seeds/gen5_failure_analysis.md sec. 3.2: their finder scored p = 1.0 on any LRG
  with a ring added, i.e. a ring test of 1.0). An honest finder keeps it near 1e-3.
- positive roles (``injection``, ``known_lens``): recall. ``known_lens`` rows of the evaluated
  split are held out by sky region (regions.py), so theirs is recall on unseen sky.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import ROLE_LABELS
from .metrics import DEFAULT_FPRS, wilson_interval

RING_TEST_FPR = 1e-3


def control_thresholds(control_scores: np.ndarray, fprs: Sequence[float] = DEFAULT_FPRS) -> dict[float, float]:
    """Score threshold per FPR target on controls: the (floor(fpr n) + 1)-th highest control
    score, so at most fpr x n controls lie strictly above it (-inf when fpr n >= n; nan without controls)."""
    neg = np.sort(np.asarray(control_scores, np.float64))[::-1]
    out = {}
    for f in fprs:
        k = int(np.floor(f * len(neg) + 1e-9))
        out[f] = float("nan") if not len(neg) else (float(neg[k]) if k < len(neg) else -np.inf)
    return out


def _key(f: float) -> str:
    return f"{f:.0e}".replace("e-0", "e-")


def role_metrics(roles: Sequence[str], scores: np.ndarray, fprs: Sequence[float] = DEFAULT_FPRS) -> dict:
    """Per role: ``n``, label, and per FPR target ``{threshold, n_above, rate, ci95}`` (rate =
    FPR for a negative role, recall for a positive one); ``ring_test`` (share of rings above the
    FPR 1e-3 control threshold, null without rings) and the control count the thresholds rest on."""
    roles = np.asarray(roles).astype(str)
    scores = np.asarray(scores, np.float64)
    ctl = roles == "control"
    thr = control_thresholds(scores[ctl], fprs)
    out: dict = {"n_controls": int(ctl.sum()), "thresholds": {_key(f): t for f, t in thr.items()},
                 "resolved": {_key(f): bool(np.floor(f * ctl.sum() + 1e-9) >= 1) for f in fprs}, "roles": {}}
    for role in sorted(set(roles.tolist())):
        sel = scores[roles == role]
        entry = {"n": int(sel.size), "label": ROLE_LABELS.get(role), "kind": "recall" if ROLE_LABELS.get(role) == 1 else "fpr"}
        for f, t in thr.items():
            k = int((sel > t).sum()) if np.isfinite(t) or t == -np.inf else 0
            entry[_key(f)] = {"threshold": t, "n_above": k, "rate": k / sel.size if sel.size else float("nan"),
                              "ci95": list(wilson_interval(k, int(sel.size))) if sel.size else [float("nan")] * 2}
        out["roles"][role] = entry
    ring = out["roles"].get("ring")
    out["ring_test"] = None if ring is None or RING_TEST_FPR not in thr else ring[_key(RING_TEST_FPR)]["rate"]
    return out


def format_role_metrics(rm: dict) -> str:
    """The per-role table as text: one line per role, rate at each control FPR."""
    keys = list(rm["thresholds"])
    lines = [f"per role at thresholds set on {rm['n_controls']} controls (rate = FPR for label 0, recall for label 1):",
             f"  {'role':<11} {'label':>5} {'n':>7}  " + "  ".join(f"{'@FPR ' + k:>12}" for k in keys)]
    for role, e in rm["roles"].items():
        lines.append(f"  {role:<11} {e['label']!s:>5} {e['n']:>7}  " + "  ".join(f"{e[k]['rate']:>12.4g}" for k in keys))
    unresolved = [k for k, ok in rm["resolved"].items() if not ok]
    if unresolved:
        lines.append(f"  (FPR {', '.join(unresolved)}: fewer than one control above the threshold at this sample size; the rates there are bounds)")
    rt = rm["ring_test"]
    lines.append(f"ring test (share of ring stamps above the control threshold at FPR {RING_TEST_FPR:g}): "
                 + ("n/a (no ring rows)" if rt is None else f"{rt:.4f}"))
    return "\n".join(lines)
