"""Stamp rows: the dataset layer's encoding of what ``inject`` returns (DESIGN 2: ``inject``
returns arrays and values, the dataset layer encodes).

``inject`` (and any row maker) returns the schema's values plus raw arrays under
:data:`ARRAY_KEYS`: ``image`` float32 [B, S, S] (nanomaggies, host + arc + its noise),
``invvar`` float32 [B, S, S] (1/nanomaggy^2), ``maskbits`` int32 [S, S], ``grids`` (the host
cutout's quantisation grids, ``Cutout.grids``), ``host_image`` float32 [B, S, S] (the host as
cut, for injections), ``arc`` float32 [B, S, S] (the noiseless arc, nanomaggies) and
``host_stamp`` (the decoded host blob, ``dataset.stamp_splice.HostStamp``, when the cutout came
from a host table). :func:`encode_row` turns them into ``stamp_npz`` (format 3; from the host
blob's bytes when ``stamp_splice.reuse_host_blob`` allows) and ``arc_npz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .stamp import encode_arc, encode_stamp
from .stamp_splice import reuse_host_blob

ARRAY_KEYS = ("image", "invvar", "maskbits", "grids", "host_image", "arc", "host_stamp")


def encode_row(row: Mapping[str, Any], write_arc: bool) -> dict:
    """``row`` with its raw arrays encoded: ``stamp_npz`` from image/invvar/maskbits (+ grids
    and host_image: lossless against the host's file integers; spliced from ``host_stamp`` when
    that gives the same bytes), ``arc_npz`` from ``arc`` when
    ``write_arc`` (else null). Values already encoded are kept; the array keys are dropped."""
    out = {k: v for k, v in row.items() if k not in ARRAY_KEYS}
    if out.get("stamp_npz") is None and row.get("image") is not None:
        host = row.get("host_stamp")
        blob = reuse_host_blob(row, host) if host is not None else None
        out["stamp_npz"] = blob if blob is not None else encode_stamp(row["image"], row["invvar"], row["maskbits"], grids=row.get("grids"), host_image=row.get("host_image"))
    if not write_arc:
        out["arc_npz"] = None  # not encoded at all (production configs leave the arc out)
    elif out.get("arc_npz") is None and row.get("arc") is not None:
        out["arc_npz"] = encode_arc(row["arc"])
    return out
