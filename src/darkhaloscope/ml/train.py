"""Training: AdamW + warm-up/cosine, bf16 autocast on CUDA, rot90/flip, BCE or focal loss.

    summary = fit(cfg, dataset_root, "runs/demo", device="cpu")

The run folder holds everything needed to reproduce and to score with the model:

    config.yaml         the resolved config (every field)      run.json      code version, hashes, split scans
    norm_stats.json     normalisation + metadata mean/std      metrics.jsonl one line per epoch
    checkpoints/last.pt model + optimiser + scheduler + RNG state (rewritten every epoch; resume)
    checkpoints/best.pt model weights of the best epoch by ``train.select_metric`` on ``train.val_split``

Ranking metrics are computed on logits (p saturates at 1.0 in float32 for logits > 17,
which turns a perfect-looking model into a tie). Ties of the selection metric go to the
higher AUC, then to the earlier epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader
from torchvision.ops import sigmoid_focal_loss
from tqdm import tqdm

from .._version import code_version
from ..config import Config, TrainConfig, config_from_dict, config_hash, config_to_dict
from ..dataset.storage import StorageOptions, filesystem_for, join
from ..errors import ConfigError, DataFileError
from .data import SplitInfo, StampStream, scan_split
from .metrics import summary_metrics
from .model import build_model

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"loss"}


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` -> a usable torch.device (ConfigError if absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but torch sees no CUDA device", field="device")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps requested but MPS is not available", field="device")
    return dev


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random rot90 (k = 0..3) and horizontal flip of images [N, C, H, W] (the dihedral group)."""
    n = x.shape[0]
    k = torch.randint(0, 4, (n,), generator=gen)
    flip = torch.randint(0, 2, (n,), generator=gen).bool()
    out = torch.empty_like(x)
    for kk in range(4):
        for ff in (False, True):
            sel = ((k == kk) & (flip == ff)).nonzero().squeeze(1).to(x.device)
            if len(sel):
                xs = torch.rot90(x.index_select(0, sel), kk, dims=(2, 3))
                out[sel] = torch.flip(xs, dims=(3,)) if ff else xs
    return out


def loss_fn(tcfg: TrainConfig):
    """(logits, labels[, per-row weights]) -> mean loss, per ``train.loss``; with weights (the
    batch's ``weight``, from ``train.role_weights``) the mean of weight x loss."""
    if tcfg.loss == "focal":
        def per_row(z, y):
            return sigmoid_focal_loss(z, y, alpha=tcfg.focal_alpha, gamma=tcfg.focal_gamma, reduction="none")
    else:
        def per_row(z, y):
            return F.binary_cross_entropy_with_logits(z, y, reduction="none")
    return lambda z, y, w=None: per_row(z, y).mean() if w is None else (per_row(z, y) * w).mean()


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up from 0 to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _autocast(device: torch.device, tcfg: TrainConfig):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and tcfg.amp_bf16)


def make_loader(ds: StampStream, tcfg: TrainConfig, device: torch.device) -> DataLoader:
    """A DataLoader over pre-batched samples (``batch_size=None``), row groups split across workers."""
    return DataLoader(ds, batch_size=None, num_workers=tcfg.num_workers, pin_memory=device.type == "cuda",
                      persistent_workers=False, prefetch_factor=4 if tcfg.num_workers else None)


@torch.no_grad()
def predict_batches(model: torch.nn.Module, loader, device: torch.device, tcfg: TrainConfig,
                    progress: bool = False, desc: str = "predict") -> dict[str, np.ndarray]:
    """Logits and every other batch field (labels, task ids, extra columns) as numpy arrays."""
    model.eval()
    parts: dict[str, list] = {}
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        x = batch["image"].to(device, non_blocking=True)
        meta = batch["meta"].to(device, non_blocking=True)
        with _autocast(device, tcfg):
            z = model(x, meta)
        parts.setdefault("logit", []).append(z.float().cpu().numpy())
        for k, v in batch.items():
            if k not in ("image", "meta"):
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def train_one_epoch(model, loader, optimizer, scheduler, criterion, device, tcfg: TrainConfig,
                    gen: torch.Generator, progress: bool = True, desc: str = "train") -> dict:
    """One pass over the loader; returns the mean loss, images seen and images/s."""
    model.train()
    total, n, t0 = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, disable=not progress, total=len(loader.dataset), leave=False)
    for batch in bar:
        x = batch["image"]
        if tcfg.augment:
            x = augment(x, gen)
        x = x.to(device, non_blocking=True)
        meta = batch["meta"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, tcfg):
            z = model(x, meta)
        loss = criterion(z.float(), y, batch["weight"].to(device, non_blocking=True) if "weight" in batch else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tcfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        optimizer.step()
        scheduler.step()
        total += float(loss.detach()) * len(y)
        n += len(y)
        bar.set_postfix(loss=f"{total / n:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    dt = time.perf_counter() - t0
    return {"train_loss": total / max(n, 1), "train_images": n, "train_images_per_s": n / dt if dt > 0 else float("nan")}


def validate(model, loader, criterion, device, tcfg: TrainConfig, progress: bool = False) -> dict:
    """Validation loss, AUC and TPR at FPR 1e-2/1e-3/1e-4 (on logits)."""
    out = predict_batches(model, loader, device, tcfg, progress, desc="validate")
    z, y = out["logit"], out["label"]
    loss = float(criterion(torch.from_numpy(z), torch.from_numpy(y)))
    return {"val_loss": loss, **{f"val_{k}": v for k, v in summary_metrics(y, z).items()}}


def _metric_value(metrics: dict, name: str) -> float:
    value = metrics["val_loss" if name == "loss" else f"val_{name}"]
    return -value if name in LOWER_IS_BETTER else value


def _is_better(new: tuple, best: tuple | None) -> bool:
    """Compare (metric, auc) pairs, NaN-safe; ties keep the earlier epoch."""
    if best is None:
        return True
    key = [(-math.inf if (v is None or v != v) else v) for v in new]
    ref = [(-math.inf if (v is None or v != v) else v) for v in best]
    return key > ref


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _comparable(cfg_dict: dict) -> dict:
    d = json.loads(json.dumps(cfg_dict))
    d["train"].pop("epochs", None)  # a resumed run may be extended
    return d


def fit(cfg: Config, dataset: str, out: str | Path, device: str = "cpu", resume: bool = False,
        options: StorageOptions | None = None, progress: bool = True) -> dict:
    """Train on ``<dataset>/split=train``, select on ``train.val_split``; returns a summary dict."""
    tcfg = cfg.train
    dev = resolve_device(device)
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    state = None
    if resume:
        if not last_path.is_file():
            raise DataFileError(f"--resume: no checkpoint at {last_path}", path=str(last_path))
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        if _comparable(state["config"]) != _comparable(config_to_dict(cfg)):
            raise ConfigError(f"--resume: the config differs from the run's ({out / 'config.yaml'}); only train.epochs may change", field="<config>")
    elif last_path.exists():
        raise ConfigError(f"run folder {out} already has a checkpoint; pass --resume or choose another --out", field="--out")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    _warn_if_incomplete(dataset, options)
    # Scans: train (metadata statistics, row cap) and validation (row cap).
    train_info = scan_split(dataset, "train", tcfg, cfg.seed, options)
    val_info = scan_split(dataset, tcfg.val_split, tcfg, cfg.seed, options)
    if state is not None:
        norm_stats = state["norm_stats"]
    else:
        norm_stats = {"normalization": tcfg.normalization, "norm_clip": tcfg.norm_clip, "inner_frac": 0.5,
                      "meta": train_info.meta_stats}
    _write_run_files(cfg, out, dataset, dev, norm_stats, train_info, val_info)

    train_ds = StampStream(dataset, "train", tcfg, norm_stats["meta"], cfg.seed, shuffle=True, hash_max=train_info.hash_max, options=options)
    val_ds = StampStream(dataset, tcfg.val_split, tcfg, norm_stats["meta"], cfg.seed, shuffle=False, hash_max=val_info.hash_max, options=options)
    train_loader, val_loader = make_loader(train_ds, tcfg, dev), make_loader(val_ds, tcfg, dev)

    model = build_model(tcfg).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps_per_epoch = math.ceil(train_info.n_rows / tcfg.batch_size) + max(0, tcfg.num_workers - 1)
    warmup, total = int(round(tcfg.warmup_epochs * steps_per_epoch)), tcfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total))
    criterion = loss_fn(tcfg)
    start, best = 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start, best = state["epoch"], state["best"]
        log.info("resuming %s after epoch %d (best %s)", out, start, best)

    history = []
    for epoch in range(start, tcfg.epochs):
        t0 = time.perf_counter()
        train_ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1009 + epoch)
        row = {"epoch": epoch + 1}
        row.update(train_one_epoch(model, train_loader, optimizer, scheduler, criterion, dev, tcfg, gen,
                                   progress, desc=f"epoch {epoch + 1}/{tcfg.epochs}"))
        row.update(validate(model, val_loader, criterion, dev, tcfg, progress))
        row["lr"] = scheduler.get_last_lr()[0]
        row["seconds"] = time.perf_counter() - t0
        key = (_metric_value(row, tcfg.select_metric), row["val_auc"])
        improved = _is_better(key, None if best is None else tuple(best["key"]))
        meta = {"config": config_to_dict(cfg), "config_hash": config_hash(cfg), "code_version": code_version(),
                "norm_stats": norm_stats, "epoch": epoch + 1, "metrics": row}
        if improved:
            best = {"epoch": epoch + 1, "metric": tcfg.select_metric, "key": list(key), "metrics": row}
            _atomic_save({**meta, "model": model.state_dict()}, best_path)
        row["best_epoch"] = best["epoch"]
        _atomic_save({**meta, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "best": best}, last_path)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        history.append(row)
        log.info("epoch %d: loss %.4f val_loss %.4f val_auc %.4f %s %.4f (best epoch %d)", epoch + 1, row["train_loss"],
                 row["val_loss"], row["val_auc"], tcfg.select_metric, row.get(f"val_{tcfg.select_metric}", row["val_loss"]), best["epoch"])
    return {"run_dir": str(out), "epochs_run": len(history), "start_epoch": start, "history": history,
            "best_epoch": best["epoch"] if best else None, "device": str(dev)}


def _warn_if_incomplete(dataset: str, options: StorageOptions | None) -> None:
    """``generate`` writes ``_SUCCESS`` last: without it the dataset may be partial."""
    try:
        fs, path = filesystem_for(dataset, options)
        missing = fs.get_file_info(join(path, "_SUCCESS")).type.name == "NotFound"
    except OSError:
        missing = True
    if missing:
        log.warning("dataset %s has no _SUCCESS marker: it may be incomplete", dataset)


def _write_run_files(cfg: Config, out: Path, dataset: str, dev: torch.device, norm_stats: dict,
                     train_info: SplitInfo, val_info: SplitInfo) -> None:
    (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=True))
    (out / "norm_stats.json").write_text(json.dumps(norm_stats, indent=2, sort_keys=True))
    info = {"code_version": code_version(), "config_hash": config_hash(cfg), "dataset": str(dataset),
            "device": str(dev), "torch": torch.__version__, "splits": {"train": train_info.to_dict(), "val": val_info.to_dict()}}
    (out / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True))


def load_run_config(run_dir: str | Path) -> Config:
    """The resolved config saved in a run folder."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise DataFileError(f"not a run folder (no config.yaml): {run_dir}", path=str(path))
    return config_from_dict(yaml.safe_load(path.read_text()))
