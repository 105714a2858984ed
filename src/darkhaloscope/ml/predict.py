"""Score stamps with a trained run: the two functions other stages build on.

    run = load_run("runs/demo")                      # (model, cfg, stats, device), model in eval mode
    p = score_stamps(run, images, {"psf_fwhm_r": fwhm, "psfdepth_r": depth})

``images`` are raw stamps float32 [N, 3, 64, 64] in nanomaggies (g, r, z), exactly as stored in
``stamp_npz``; the run's own normalisation and metadata standardisation are applied here, so a
caller never re-implements them. ``p_lens`` is float64 sigmoid(logit) (``score_logits`` gives
the logits, which keep their ranking where p rounds to 1.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import expit

from ..config import Config
from ..errors import ConfigError, DataFileError
from .model import LensFinder, build_model
from .normalize import get_normalizer
from .train import _autocast, load_run_config, resolve_device


class LoadedRun(NamedTuple):
    """A trained run ready to score: unpacks as ``model, cfg, stats, device``."""

    model: LensFinder
    cfg: Config
    stats: dict  # {"normalization", "norm_clip", "inner_frac", "meta": {"features", "mean", "std"}}
    device: torch.device


def load_run(run_dir: str | Path, device: str = "auto", checkpoint: str = "best") -> LoadedRun:
    """Load ``<run_dir>/checkpoints/<checkpoint>.pt`` (``best`` or ``last``) with the run's config and stats."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise DataFileError(f"no checkpoint {path}", path=str(path))
    state = torch.load(path, map_location="cpu", weights_only=False)
    stats = state.get("norm_stats") or json.loads((run_dir / "norm_stats.json").read_text())
    dev = resolve_device(device)
    model = build_model(_no_pretrained(cfg).train, n_meta=len(stats["meta"]["features"]))
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    return LoadedRun(model, cfg, stats, dev)


def _no_pretrained(cfg: Config) -> Config:
    # The checkpoint holds every weight: never read the pretrained file again at load time.
    from ..config import replace

    return replace(cfg, **{"train.pretrained_weights": ""})


def prepare_inputs(stats: dict, images: np.ndarray, metadata: dict[str, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised images [N, B, S, S] and standardised metadata [N, F] (float32), as in training."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ConfigError(f"images must be [N, B, S, S] nanomaggies, got shape {images.shape}", field="images")
    x = get_normalizer(stats["normalization"])(images, clip=stats["norm_clip"])
    feats = stats["meta"]["features"]
    meta = np.zeros((len(images), len(feats)), np.float32)
    for j, name in enumerate(feats):
        if metadata is None or name not in metadata:
            raise ConfigError(f"metadata feature {name!r} missing; this run needs {feats}", field=name)
        col = np.asarray(metadata[name], dtype=np.float64).ravel()
        if col.shape != (len(images),):
            raise ConfigError(f"metadata feature {name!r} has {col.shape[0]} values for {len(images)} images", field=name)
        if not np.isfinite(col).all():
            raise ConfigError(f"metadata feature {name!r} has NaN or inf at index {int(np.flatnonzero(~np.isfinite(col))[0])}", field=name)
        meta[:, j] = (col - stats["meta"]["mean"][j]) / stats["meta"]["std"][j]
    return x, meta


def _as_run(run_or_model) -> LoadedRun:
    if isinstance(run_or_model, (str, Path)):
        return load_run(run_or_model)
    if isinstance(run_or_model, LoadedRun):
        return run_or_model
    if isinstance(run_or_model, tuple) and len(run_or_model) == 4:
        return LoadedRun(*run_or_model)
    raise TypeError("score_stamps needs a run folder or the result of load_run(...)")


@torch.no_grad()
def score_logits(run_or_model, images: np.ndarray, metadata: dict[str, np.ndarray] | None = None, batch_size: int = 256) -> np.ndarray:
    """Logits float64 [N] of raw stamps [N, 3, S, S] (nanomaggies)."""
    run = _as_run(run_or_model)
    x, meta = prepare_inputs(run.stats, images, metadata)
    run.model.eval()
    out = []
    for s in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[s:s + batch_size]).to(run.device)
        mb = torch.from_numpy(meta[s:s + batch_size]).to(run.device)
        with _autocast(run.device, run.cfg.train):
            out.append(run.model(xb, mb).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def score_stamps(run_or_model, images: np.ndarray, metadata: dict[str, np.ndarray] | None = None, batch_size: int = 256) -> np.ndarray:
    """p_lens float64 [N] of raw stamps [N, 3, S, S] (nanomaggies) with metadata columns {name: [N]}."""
    return expit(score_logits(run_or_model, images, metadata, batch_size))
