"""Shared parts of the shortcut diagnostics (:mod:`.diagnostics`): the result record, the
scorer contract and its batched call with metadata checks, stamp geometry (pixels, centre at
S/2 as the seeds'), Pearson statistics and figure files (matplotlib Agg, PNG).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import ConfigError

Scorer = Callable[[np.ndarray, dict], np.ndarray]
PIXSCALE = 0.262  # arcsec / pixel


@dataclass
class Diagnostic:
    """One diagnostic's outcome: ``name``, flat-ish ``numbers`` (JSON-able), ``figure`` path."""

    name: str
    numbers: dict
    figure: Path | None = None
    table: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------ helpers
def _as_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ConfigError(f"images must be [N, B, S, S], got shape {x.shape}", field="images")
    return x


def radius_map(size: int, centre: float | None = None) -> np.ndarray:
    """Distance (pixels) of every pixel from the stamp centre (default S/2, the seeds')."""
    c = size / 2.0 if centre is None else centre
    y, x = np.mgrid[:size, :size]
    return np.hypot(y - c, x - c)


def band_index(bands: str, band: str = "r") -> int:
    """Channel of ``band`` in ``bands`` (falls back to the middle channel)."""
    return bands.index(band) if band in bands else len(bands) // 2


def central_max(images: np.ndarray, band: int = 1, box: int = 8) -> np.ndarray:
    """Max of one band in the central ``box`` x ``box`` pixels, per stamp (nanomaggies)."""
    x = _as_images(images)
    s = x.shape[-1]
    lo = s // 2 - box // 2
    return x[:, band, lo:lo + box, lo:lo + box].reshape(len(x), -1).max(axis=1)


def check_metadata(metadata: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Metadata as float arrays of length n; raises ConfigError on zeros, NaN or wrong length
    (an all-zero PSF column is the seeds' bug, not a value)."""
    out = {}
    for k, v in metadata.items():
        a = np.asarray(v, dtype=np.float32).reshape(-1)
        if len(a) != n:
            raise ConfigError(f"metadata {k!r} has {len(a)} values for {n} stamps", field=k)
        if not np.isfinite(a).all():
            raise ConfigError(f"metadata {k!r} holds NaN/inf; fill it from the catalogs first", field=k)
        if (k.startswith(("psf_fwhm", "psfdepth", "psfsize")) and (a <= 0).any()):
            raise ConfigError(f"metadata {k!r} holds zeros/negatives: PSF size and depth are never 0", field=k)
        out[k] = a
    return out


def _score(scorer: Scorer, images: np.ndarray, metadata: Mapping[str, np.ndarray], batch: int = 256) -> np.ndarray:
    x = _as_images(images)
    meta = check_metadata(metadata, len(x))
    out = []
    for i in range(0, len(x), batch):
        p = np.asarray(scorer(x[i:i + batch], {k: v[i:i + batch] for k, v in meta.items()}), dtype=np.float64).reshape(-1)
        if len(p) != len(x[i:i + batch]):
            raise ConfigError(f"scorer returned {len(p)} scores for {len(x[i:i + batch])} stamps", field="scorer")
        out.append(p)
    return np.concatenate(out) if out else np.zeros(0)


def _fig(out_dir: str | Path | None, name: str):
    if out_dir is None:
        return None, None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return plt, path


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _pearson(x: np.ndarray, y: np.ndarray) -> dict:
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return {"r": None, "p_value": None, "n": n}
    r, pv = stats.pearsonr(x[ok], y[ok])
    return {"r": float(r), "p_value": float(pv), "n": n}

