"""Training-stage throughput: data-loader stamps/s per worker and training images/s.

- ``loader_stamps_per_s_per_worker``: one loader process (num_workers=0, torch on 1 thread)
  doing everything a DataLoader worker does: read Parquet row groups (gzip, as ``generate``
  writes by default), decode ``stamp_npz``, normalise (``train.normalization``), batch.
  ``loader_stamps_per_s_per_worker_zstd``: the same on a zstd copy of the toy data.
- ``loader_decode_normalize_stamps_per_s``: decode + normalise only (blobs already in memory),
  the loader's own path (read-only image views stacked into one batch, then the normaliser).
- ``train_images_per_s``: forward + backward + AdamW steps of the configured model (stem
  ``train.stem``) at batch 32 on the device used, median of the timed steps after a warm-up.

Each rate is the median of 3 passes. The demo dataset is used when it exists
(``paths.dataset``/``generate.dataset_name``), else a toy dataset in the output folder.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _toy(out_dir: Path, compression: str) -> str:
    from darkhaloscope.ml.toydata import write_toy_dataset

    root = Path(out_dir) / f"bench_train_toy_{compression}"
    if not (root / "split=train").is_dir():
        write_toy_dataset(root, {"train": 1024}, seed=1, shards=2, row_group_rows=256, n_failed=0, compression=compression)
    return str(root)


def _loader_rate(root: str, tcfg, seed: int) -> float:
    from darkhaloscope.ml.data import StampStream, scan_split

    info = scan_split(root, "train", tcfg, seed)
    ds = StampStream(root, "train", tcfg, info.meta_stats, seed, hash_max=info.hash_max)
    rates = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        t0, n = time.perf_counter(), 0
        for batch in ds:
            n += len(batch["label"])
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def run(cfg, out_dir) -> dict:
    import pyarrow.parquet as pq

    from darkhaloscope.config import replace
    from darkhaloscope.ml.data import StampStream, decode_image_readonly, scan_split
    from darkhaloscope.ml.model import build_model
    from darkhaloscope.ml.normalize import get_normalizer
    from darkhaloscope.ml.train import augment, loss_fn

    out_dir = Path(out_dir)
    demo = Path(cfg.paths.dataset) / cfg.generate.dataset_name
    root, kind = (str(demo), "demo") if (demo / "split=train").is_dir() else (_toy(out_dir, "gzip"), "toy")
    tcfg = replace(cfg.train, num_workers=0, batch_size=256, max_rows_per_split=1024)
    torch.set_num_threads(1)
    figures = {"loader_stamps_per_s_per_worker": round(_loader_rate(root, tcfg, cfg.seed), 1)}
    figures["loader_stamps_per_s_per_worker_zstd"] = round(_loader_rate(_toy(out_dir, "zstd"), tcfg, cfg.seed), 1)

    blobs = pq.read_table(_toy(out_dir, "zstd"), columns=["stamp_npz"], partitioning=None)["stamp_npz"].to_pylist()[:512]
    norm = get_normalizer(cfg.train.normalization)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for s in range(0, len(blobs), 256):
            norm(np.stack([decode_image_readonly(b) for b in blobs[s:s + 256]]), clip=cfg.train.norm_clip)
        rates.append(len(blobs) / (time.perf_counter() - t0))
    figures["loader_decode_normalize_stamps_per_s"] = round(statistics.median(rates), 1)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(2 if device.type == "cpu" else 1)
    model = build_model(replace(cfg.train, pretrained_weights="")).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    crit = loss_fn(cfg.train)
    gen = torch.Generator().manual_seed(0)
    info = scan_split(root, "train", tcfg, cfg.seed)
    batch = next(iter(StampStream(root, "train", tcfg, info.meta_stats, cfg.seed, batch_size=32)))
    step_rates = []
    for step in range(4):
        t0 = time.perf_counter()
        x = augment(batch["image"], gen).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and cfg.train.amp_bf16):
            z = model(x, batch["meta"].to(device))
        loss = crit(z.float(), batch["label"].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            step_rates.append(len(x) / (time.perf_counter() - t0))
    figures.update({
        "train_images_per_s": round(statistics.median(step_rates), 2),
        "train_device": device.type,
        "train_bench_dataset": kind,
        "train_bench_stem": cfg.train.stem,
        "train_bench_normalization": cfg.train.normalization,
    })
    return figures
