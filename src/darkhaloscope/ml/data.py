"""Stream a split of the stamp dataset into PyTorch batches (local disk or ``s3://``).

    info = scan_split(root, "train", cfg.train)                 # filters, counts, meta stats
    ds = StampStream(root, "train", cfg.train, meta_stats=info.meta_stats, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    for epoch in ...: ds.set_epoch(epoch); for batch in loader: ...

The unit of work is one Parquet row group (``generate`` writes ~512 rows per group), so a
split with fewer shards than DataLoader workers still keeps every worker busy. Each epoch the
row groups are permuted with a generator seeded by (seed, epoch), dealt round-robin to the
workers, and each worker shuffles its rows in blocks of ``train.shuffle_block_rows`` rows drawn
from several row groups. Same seed, epoch and worker count -> the same batches.

Rows: ``cutout_ok = false`` rows are skipped; the label of a row is its role's
(``ids.label_of``: 1 = injection, known_lens; 0 = control, unlensed, ring, impostor) and its loss
weight ``train.role_weights[role]`` (default 1); the row filters of ``cfg.train`` (arc_snr range,
theta_E / PSF FWHM) apply to injections only (the other roles are not filtered by their arc);
``train.accepted_only`` drops ``accepted = false`` painted rows (injections, and negatives whose
reference arc was unaccepted) and the same share of controls per host PSF/depth bin (ml/selection.py). ``max_rows_per_split`` keeps the rows with the smallest (seed-salted) hash of
``task_id``: a fixed, split-wide random subset, the same every epoch.

A batch is a dict of tensors: ``image`` float32 [N, B, S, S] (normalised), ``meta`` float32
[N, F] (standardised with the train split's mean / std, saved with the run), ``label`` float32
[N], ``task_id`` int64 [N], and every ``extra_columns`` entry as float64 [N] (null -> NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..config import TrainConfig
from ..dataset.reader import split_dataset
from ..dataset.stamp import decode_image, decode_image_readonly  # noqa: F401 (the loader's decode; re-exported)
from ..dataset.storage import StorageOptions, filesystem_for
from ..errors import DatasetError
from ..ids import labels_of
from .normalize import get_normalizer
from .selection import FILTER_COLUMNS, MatchedSelection, _col, row_mask, split_selection, task_hash  # noqa: F401 (re-exported)


@dataclass
class SplitInfo:
    """What a light scan of one split found (after filters and the row cap)."""

    split: str
    n_rows: int
    n_injections: int
    n_controls: int
    n_skipped_cutout: int
    hash_max: int  # keep rows with task_hash <= hash_max (2**64 - 1 = all)
    meta_features: list[str] = field(default_factory=list)
    meta_mean: list[float] = field(default_factory=list)
    meta_std: list[float] = field(default_factory=list)
    selection: dict | None = None  # ml/selection.py MatchedSelection of this split

    @property
    def meta_stats(self) -> dict:
        return {"features": list(self.meta_features), "mean": list(self.meta_mean), "std": list(self.meta_std)}

    def to_dict(self) -> dict:
        return asdict(self)


def scan_split(root: str, split: str, tcfg: TrainConfig, seed: int = 0, options: StorageOptions | None = None) -> SplitInfo:
    """Read the light columns of a split: counts, the row-cap hash threshold, metadata mean/std.

    Raises DatasetError when the split is empty or a kept row has a null metadata feature.
    """
    features = list(tcfg.metadata_features)
    cols = list(dict.fromkeys([*FILTER_COLUMNS, *features]))
    try:
        table = split_dataset(root, split, options).to_table(columns=cols)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"cannot read split {split!r} of dataset {root}: {exc}", path=str(root)) from None
    selection = split_selection(table, tcfg)
    keep = row_mask(table, tcfg, selection)
    n_skipped = int((~table["cutout_ok"].to_numpy(zero_copy_only=False).astype(bool)).sum())
    hashes = task_hash(table["task_id"].to_numpy(), seed)[keep]
    hash_max = np.iinfo(np.uint64).max
    if tcfg.max_rows_per_split and len(hashes) > tcfg.max_rows_per_split:
        hash_max = np.partition(hashes, tcfg.max_rows_per_split - 1)[tcfg.max_rows_per_split - 1]
        keep[keep] = hashes <= hash_max
    kept = table.filter(pa.array(keep))
    if kept.num_rows == 0:
        raise DatasetError(f"split {split!r} of {root} has no usable rows (cutout_ok and filters)", path=str(root))
    inj = int(labels_of(kept["role"].to_numpy(zero_copy_only=False)).sum())  # positives (injection, known_lens)
    mean, std = [], []
    for name in features:
        values = _col(kept, name)
        bad = ~np.isfinite(values)
        if bad.any():
            tid = int(kept["task_id"][int(np.flatnonzero(bad)[0])].as_py())
            raise DatasetError(f"metadata feature {name!r} is null or non-finite in split {split!r}",
                               path=str(root), row=tid, field=name)
        mean.append(float(values.mean()))
        std.append(float(values.std()) or 1.0)  # a constant feature standardises to 0
    return SplitInfo(split, kept.num_rows, inj, kept.num_rows - inj, n_skipped, int(hash_max), features, mean, std,
                     selection.to_dict() if selection else None)


@dataclass(frozen=True)
class _Unit:
    path: str
    row_group: int
    num_rows: int


class StampStream(IterableDataset):
    """Batches of one split, streamed by row group; see the module docstring.

    Parameters
    ----------
    root, split: dataset root (path or ``s3://``) and split name.
    tcfg: the ``train`` config section (normalisation, filters, batch size, row cap).
    meta_stats: ``{"features", "mean", "std"}`` from the TRAIN split (:func:`scan_split`).
    seed: global seed (shuffles and the row-cap hash).
    shuffle: permute row groups and rows each epoch (training) or keep file order (evaluation).
    hash_max: row-cap threshold from :func:`scan_split` of this split.
    extra_columns: columns returned as float64 (e.g. ``arc_snr``, ``theta_e``).
    batch_size: rows per batch (default ``tcfg.batch_size``).
    """

    def __init__(self, root: str, split: str, tcfg: TrainConfig, meta_stats: dict, seed: int = 0,
                 shuffle: bool = True, hash_max: int | None = None, extra_columns: Sequence[str] = (),
                 batch_size: int | None = None, options: StorageOptions | None = None) -> None:
        super().__init__()
        self.root, self.split, self.tcfg, self.seed = str(root), split, tcfg, int(seed)
        self.shuffle, self.options = shuffle, options
        self.hash_max = np.uint64(np.iinfo(np.uint64).max if hash_max is None else hash_max)
        self.extra_columns = list(extra_columns)
        self.batch_size = int(batch_size or tcfg.batch_size)
        self.features = list(meta_stats.get("features", []))
        self.meta_mean = np.asarray(meta_stats.get("mean", []), np.float32)
        self.meta_std = np.asarray(meta_stats.get("std", []), np.float32)
        self.normalizer = get_normalizer(tcfg.normalization)
        self.epoch = 0
        self.columns = list(dict.fromkeys([*FILTER_COLUMNS, *self.features, *self.extra_columns, "stamp_npz"]))
        self.units = self._list_units()
        self.selection = self._selection()

    def _selection(self) -> MatchedSelection | None:
        """The split's matched selection (light columns of the whole split, read once)."""
        if not self.tcfg.accepted_only:
            return None
        try:
            table = split_dataset(self.root, self.split, self.options).to_table(columns=list(FILTER_COLUMNS))
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(f"cannot read split {self.split!r} of dataset {self.root}: {exc}", path=self.root) from None
        return split_selection(table, self.tcfg)

    def _list_units(self) -> list[_Unit]:
        fs, _ = filesystem_for(self.root, self.options)
        try:
            files = sorted(split_dataset(self.root, self.split, self.options).files)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(f"cannot list split {self.split!r} of dataset {self.root}: {exc}", path=self.root) from None
        if not files:
            raise DatasetError(f"split {self.split!r} of dataset {self.root} has no Parquet files", path=self.root)
        units = []
        for path in files:
            with fs.open_input_file(path) as f:
                meta = pq.ParquetFile(f).metadata
            units += [_Unit(path, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        return units

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration uses (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:  # an upper bound on batches for progress bars; row groups are cut per worker
        return max(1, math.ceil(sum(u.num_rows for u in self.units) / self.batch_size))

    def _read(self, fs, unit: _Unit) -> pa.Table:
        try:
            with fs.open_input_file(unit.path) as f:
                table = pq.ParquetFile(f).read_row_group(unit.row_group, columns=self.columns)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(f"cannot read row group {unit.row_group} of {unit.path}: {exc}", path=unit.path) from None
        keep = row_mask(table, self.tcfg, self.selection)
        if self.hash_max != np.iinfo(np.uint64).max:
            keep &= task_hash(table["task_id"].to_numpy(), self.seed) <= self.hash_max
        return table.filter(pa.array(keep))

    def _batch(self, table: pa.Table) -> dict[str, torch.Tensor]:
        blobs = table["stamp_npz"].to_pylist()
        task_ids = table["task_id"].to_numpy()
        images = []
        for tid, blob in zip(task_ids, blobs, strict=True):
            if blob is None:
                raise DatasetError("cutout_ok row without stamp_npz", path=self.root, row=int(tid), field="stamp_npz")
            img = decode_image_readonly(blob)
            if images and img.shape != images[0].shape:
                raise DatasetError(f"stamp shape {img.shape} differs from {images[0].shape}", path=self.root, row=int(tid), field="stamp_npz")
            images.append(img)
        x = self.normalizer(np.stack(images), clip=self.tcfg.norm_clip)
        meta = np.zeros((table.num_rows, len(self.features)), np.float32)
        for j, name in enumerate(self.features):
            meta[:, j] = _col(table, name)
        if self.features:
            bad = ~np.isfinite(meta).all(axis=1)
            if bad.any():
                raise DatasetError("null or non-finite metadata feature", path=self.root, row=int(task_ids[np.flatnonzero(bad)[0]]), field=",".join(self.features))
            meta = (meta - self.meta_mean) / self.meta_std
        roles = table["role"].to_numpy(zero_copy_only=False)
        out = {
            "image": torch.from_numpy(x),
            "meta": torch.from_numpy(meta),
            "label": torch.from_numpy(labels_of(roles).astype(np.float32)),
            "weight": torch.from_numpy(np.array([self.tcfg.role_weights.get(r, 1.0) for r in roles], np.float32)),
            "task_id": torch.from_numpy(task_ids.astype(np.int64)),
        }
        for name in self.extra_columns:
            out[name] = torch.from_numpy(_col(table, name))
        return out

    def worker_units(self, worker_id: int, num_workers: int) -> list[int]:
        """Indices of the row groups worker ``worker_id`` of ``num_workers`` reads this epoch."""
        order = np.arange(len(self.units))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        return [int(i) for i in order[worker_id::num_workers]]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        fs, _ = filesystem_for(self.root, self.options)
        rng = np.random.default_rng([self.seed, self.epoch, wid, nw, 7])
        pending: list[pa.Table] = []
        n_pending = 0
        mine = self.worker_units(wid, nw)
        for k, i in enumerate(mine):
            table = self._read(fs, self.units[i])
            if table.num_rows:
                pending.append(table)
                n_pending += table.num_rows
            last = k == len(mine) - 1
            if n_pending and (n_pending >= self.tcfg.shuffle_block_rows or last):
                block = pa.concat_tables(pending).combine_chunks()
                if self.shuffle:
                    block = block.take(pa.array(rng.permutation(block.num_rows)))
                n_full = block.num_rows if last else block.num_rows - block.num_rows % self.batch_size
                for s in range(0, n_full, self.batch_size):
                    yield self._batch(block.slice(s, min(self.batch_size, n_full - s)))
                rest = block.slice(n_full)
                pending, n_pending = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

