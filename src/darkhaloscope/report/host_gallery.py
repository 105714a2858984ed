"""A look at a host table (the product of ``stage``): real stamps with their metadata.

The notebook ``notebooks/explore_hosts.ipynb`` calls :func:`host_gallery`; the unit test calls it
too, so the notebook's code is the tested code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..dataset.hosts import read_host_rows
from ..dataset.stamp import decode_stamp
from .figures import composite

# metadata shown under each stamp when the host table has it (task-table names)
SHOW = ("task_id", "brickname", "role", "flux_r", "psfsize_r", "psfdepth_r", "z_phot", "z_spec", "type", "shape_r")


def host_gallery(url: str, split: str = "train", n: int = 8, stretch: float = 0.05, q: float = 8.0, options=None) -> tuple[Figure, pd.DataFrame]:
    """(figure, metadata) of the first ``n`` stamps with ``cutout_ok`` of one split, in
    ``task_id`` order: a g,r,z Lupton composite per stamp (``stretch`` nanomaggies, softening
    ``q``), its maskbits beneath, and a table of the metadata columns the host table holds.

    Reads the metadata without the pixels first, then only the chosen rows' ``stamp_npz``."""
    import pyarrow.compute as pc

    meta = read_host_rows(url, split, options=options)
    meta = meta.drop_columns(["stamp_npz"]).filter(pc.field("cutout_ok")).sort_by("task_id").slice(0, n)
    ids = meta["task_id"].to_pylist()
    blobs = read_host_rows(url, split, columns=["task_id", "stamp_npz"], filter=pc.field("task_id").isin(ids), options=options)
    stamps = {t: decode_stamp(b) for t, b in zip(blobs["task_id"].to_pylist(), blobs["stamp_npz"].to_pylist(), strict=True)}
    df = meta.to_pandas()
    ncol = max(len(ids), 1)
    fig = Figure(figsize=(1.6 * ncol, 4.0))
    for j, tid in enumerate(ids):
        s = stamps[tid]
        ax = fig.add_subplot(2, ncol, j + 1)
        ax.imshow(composite(s["image"], stretch, q), origin="lower")
        row = df.iloc[j]
        flux = row.get("flux_r")
        ax.set_title(f"{tid}\nr flux {flux:.1f} nmgy" if flux is not None and np.isfinite(flux) else str(tid), fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        mx = fig.add_subplot(2, ncol, ncol + j + 1)
        mx.imshow(s["maskbits"] != 0, origin="lower", cmap="gray_r", vmin=0, vmax=1)
        mx.set_title(f"maskbits: {int((s['maskbits'] != 0).sum())} px", fontsize=6)
        mx.set_xticks([])
        mx.set_yticks([])
    fig.suptitle(f"host table {url} split={split}: {len(ids)} stamps (g,r,z; maskbits set in black)", fontsize=7)
    fig.tight_layout()
    return fig, df[[c for c in SHOW if c in df.columns] + [c for c in ("cutout_note", "stamp_source") if c in df.columns]]
