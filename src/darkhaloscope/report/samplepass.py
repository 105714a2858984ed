"""The pixel pass: decode a bounded, hash-selected sample of stamps once and keep only what
the gates and figures need (a few floats per row, plus a handful of stamps for the gallery
and the re-render check, chosen as the rows with the smallest hash of ``task_id``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..config import PAINTED_ROLES, ROLES
from ..dataset.stamp import decode_arc, decode_stamp
from ..errors import DatasetError
from .accumulate import hash_unit_array
from .pixels import (
    StampGeometry,
    arc_flux_fraction_beyond,
    central_brightness,
    nuisance_features,
    recompute_snr,
    unmasked_peak_snr,
)

# Row metadata that should carry no information about the arc (host, survey and encoding).
META_NUISANCE = ("psf_fwhm_g", "psf_fwhm_r", "psf_fwhm_z", "psfdepth_g", "psfdepth_r", "psfdepth_z", "flux_g", "flux_r", "flux_z")
RESERVOIR_SALT = "dhs-report-reservoir-v1"


class BottomK:
    """The k items with the smallest keys seen so far (deterministic whatever the read order)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._heap: list = []  # max-heap by key via negation

    def offer(self, key: float, tie: int, make_item) -> None:
        if self.k <= 0:
            return
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, (-key, -tie, make_item()))
        elif -self._heap[0][0] > key:
            heapq.heapreplace(self._heap, (-key, -tie, make_item()))

    def would_keep(self, key: float) -> bool:
        return len(self._heap) < self.k or -self._heap[0][0] > key

    def items(self) -> list:
        return [it for _, _, it in sorted(self._heap, key=lambda t: (-t[0], -t[1]))]


@dataclass
class PixelSample:
    """What the pixel pass keeps: per-row features, SNR checks, gallery and re-render stamps."""

    feature_rows: list = field(default_factory=list)  # dicts of floats
    labels: list = field(default_factory=list)  # 1 injection, 0 any other role
    roles: list = field(default_factory=list)  # the row's role (gates compare role pairs)
    task_ids: list = field(default_factory=list)  # of feature_rows (the trainer's selection filters them)
    splits: list = field(default_factory=list)
    central: list = field(default_factory=list)  # [B] arrays
    central_arc_subtracted: list = field(default_factory=list)  # bool per row
    snr_checks: list = field(default_factory=list)  # (task_id, stored, recomputed) x (snr, sum, region)
    n_injections_without_arc: int = 0  # painted rows (injection, unlensed, ring) without arc_npz
    arc_outer_fraction: list = field(default_factory=list)
    low_snr_causes: dict = field(default_factory=dict)  # split -> {"masked": n, "faint": n}
    n_inj_with_arc: dict = field(default_factory=dict)  # split -> sampled injections with arc_npz
    n_rows: int = 0
    n_row_groups: int = 0
    gallery: dict = field(default_factory=dict)  # role -> BottomK
    rerender: BottomK | None = None


def _encoding_features(blob: bytes, arrays: dict) -> dict[str, float]:
    img, iv, mb = arrays["image"], arrays["invvar"], arrays["maskbits"]
    return {
        "stamp_bytes": float(len(blob)),
        "image_dtype": float(img.dtype.num),
        "invvar_dtype": float(iv.dtype.num),
        "maskbits_dtype": float(mb.dtype.num),
        "stamp_side": float(img.shape[-1]),
    }


def _meta_float(value) -> float:
    return float("nan") if value is None else float(value)


def run_pixel_pass(batches, geom: StampGeometry, gallery_k: int, rerender_k: int, snr_band: int = 1) -> PixelSample:
    """Consume (split, shard, table) row groups; return the :class:`PixelSample`.
    ``snr_band`` is the channel the stored SNRs are measured in."""
    ps = PixelSample()
    ps.gallery = {role: BottomK(gallery_k) for role in ROLES}
    ps.rerender = BottomK(rerender_k)
    for split, shard, table in batches:
        ps.n_row_groups += 1
        _consume(ps, split, shard, table, geom, snr_band)
    return ps


def _consume(ps: PixelSample, split: str, shard: str, table: pa.Table, geom: StampGeometry, k: int) -> None:
    n = table.num_rows
    if n == 0:
        return
    task_ids = table.column("task_id").to_numpy()
    keys = hash_unit_array(task_ids, RESERVOIR_SALT)
    roles = table.column("role").to_pylist()
    oks = table.column("cutout_ok").to_pylist()
    stamps = table.column("stamp_npz")
    arcs = table.column("arc_npz")
    meta = {c: table.column(c).to_pylist() for c in (*META_NUISANCE, "arc_snr", "arc_snr_sum", "arc_snr_region")}
    causes = ps.low_snr_causes.setdefault(split, {"masked": 0, "faint": 0})
    for i in range(n):
        if not oks[i] or roles[i] not in ROLES:
            continue
        blob = stamps[i].as_py()
        if blob is None:
            raise DatasetError(f"row task_id={int(task_ids[i])} has cutout_ok=true but no stamp_npz", path=f"split={split}/{shard}", row=int(task_ids[i]))
        try:
            arrays = decode_stamp(blob)
            image, invvar, maskbits = arrays["image"], arrays["invvar"], arrays["maskbits"]
        except (ValueError, KeyError, OSError) as exc:
            raise DatasetError(f"cannot decode stamp_npz of task_id={int(task_ids[i])}: {exc}", path=f"split={split}/{shard}", row=int(task_ids[i])) from None
        if image.shape[-1] != geom.size:
            raise DatasetError(f"stamp of task_id={int(task_ids[i])} is {image.shape}, expected side {geom.size}", path=f"split={split}/{shard}", row=int(task_ids[i]))
        is_inj = roles[i] == "injection"
        painted = roles[i] in PAINTED_ROLES  # something added to the host: its arc_npz is subtracted and checked
        arc = None
        arc_blob = arcs[i].as_py() if painted else None
        if arc_blob is not None:
            arc = decode_arc(arc_blob).astype(np.float32)
        elif painted:
            ps.n_injections_without_arc += 1

        feats = nuisance_features(image, invvar, maskbits, geom)
        feats.update(_encoding_features(blob, arrays))
        feats.update({c: _meta_float(meta[c][i]) for c in META_NUISANCE})
        ps.feature_rows.append(feats)
        ps.labels.append(1 if is_inj else 0)
        ps.roles.append(roles[i])
        ps.task_ids.append(int(task_ids[i]))
        ps.splits.append(split)
        ps.central.append(central_brightness(image, invvar, maskbits, arc, geom))
        ps.central_arc_subtracted.append(arc is not None or not painted)
        ps.n_rows += 1

        stored_snr = meta["arc_snr"][i]
        if arc is not None:
            rec = recompute_snr(arc[k], invvar[k], maskbits, geom.bad_mask)
            ps.snr_checks.append((int(task_ids[i]), stored_snr, rec[0], meta["arc_snr_sum"][i], rec[1], meta["arc_snr_region"][i], rec[2]))
            ps.arc_outer_fraction.append(arc_flux_fraction_beyond(arc, geom))
            ps.n_inj_with_arc[split] = ps.n_inj_with_arc.get(split, 0) + is_inj
            if is_inj and (stored_snr is None or stored_snr < 1.0):
                causes["masked" if unmasked_peak_snr(arc[k], invvar[k]) >= 1.0 else "faint"] += 1
            ps.rerender.offer(float(keys[i]), int(task_ids[i]), lambda i=i, arc=arc: (table.slice(i, 1).to_pylist()[0], arc))

        role = roles[i]
        ps.gallery[role].offer(float(keys[i]), int(task_ids[i]), lambda image=image, arc=arc, s=stored_snr, sp=split, t=int(task_ids[i]): {
            "image": image, "arc": arc, "arc_snr": s, "split": sp, "task_id": t})
