"""Stamp format 3's compiled codec steps (``dataset.stamp_v3`` parses the container around them).

* :func:`decode_plane_kernel`: one call per plane from the blob's bytes to float32 pixels: the
  band streams are RICE_1-decoded by the survey's compiled bit reader, two bands at a time
  (``survey.rice_box.rice_ints2``; cfitsio ``ricecomp.c`` ``fits_rdecomp``; the format-3 streams
  are plain cfitsio RICE_1, block 32, 4-byte integers, as astropy's ``compress_rice_1_c`` writes
  them), then one pass per band undoes the mean-of-4 prediction, dequantises and adds the
  addends (``quant_split.join_rice_plane_kernel``). ~25 % less time per plane than one band at a
  time and the prediction undone in a pass of its own (image plane of a 64 x 64 grz host: 84 -> 64 us).
* :func:`splice_addends`: the image addends and raw bits of a painted row of a host, computed
  from the host's floats, its blob's raw bits and the new values, exactly as
  ``quant_split.split_plane_kernel`` gives them (see its docstring for why: in format 3 a pixel's
  integer depends on the host alone), without quantising again. ``dataset.stamp_splice`` uses it.

numba caches a kernel per source file: after editing ``survey/rice_box.py`` or
``dataset/quant_split.py`` / ``fits_quant.py`` clear this file's cache (``__pycache__/v3_kernels*``) or touch this file,
since the kernels here compile those functions into themselves.
Units: those of the plane (nanomaggies for images, 1/nanomaggy^2 for invvar).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..survey.rice_box import BLOCK, PAD, rice_ints, rice_ints2
from .fits_quant import put_addend
from .quant_split import join_rice_plane_kernel, kept_addend

SPLICE_OK, SPLICE_NOT_A_HOST, SPLICE_AMBIGUOUS = 0, 1, 2  # splice_addends status codes
# decode_plane_kernel status codes (with a detail: numbers used, a band, or numbers too many)
DECODED, BAD_STREAM, VECTOR_SHORT, VECTOR_BAD_GRID, VECTOR_LONG = 0, 1, 2, 3, 4
_INT_SAFE = 2.0**40  # grid numbers are checked below this before becoming integers


@numba.njit(cache=True, nogil=True, error_model="numpy")
def check_vector(vector, nb, s0, s1):
    """(status, detail): does the grid vector hold ``nb`` bands whose tiles cover an ``s0`` x ``s1``
    stamp (so the dequantisation's reads stay inside it)? :data:`DECODED` or VECTOR_SHORT (it
    ends before band ``detail``), VECTOR_BAD_GRID (band ``detail``'s grid does not describe the
    stamp), VECTOR_LONG (``detail`` numbers too many)."""
    pos, size = 0, vector.shape[0]
    for b in range(nb):
        if pos >= size or not np.isfinite(vector[pos]):
            return VECTOR_SHORT, b
        if vector[pos] < 0.0 or vector[pos] > size:
            return VECTOR_BAD_GRID, b
        n = int(vector[pos])
        if n == 0:
            pos += 1
            continue
        ok = n >= 13 and pos + 2 + n <= size
        if ok:
            for i in range(13):
                ok = ok and abs(vector[pos + 2 + i]) < _INT_SAFE
        if ok:
            g = vector[pos + 2 : pos + 2 + n]
            th, tw, oy, ox, ty0, tx0, nty, ntx = int(g[2]), int(g[3]), int(g[6]), int(g[7]), int(g[8]), int(g[9]), int(g[10]), int(g[11])
            ok = (th > 0 and tw > 0 and n == 13 + 2 * nty * ntx and oy >= 0 and ox >= 0 and oy // th - ty0 == 0 and ox // tw - tx0 == 0
                  and (oy + s0 - 1) // th - ty0 < nty and (ox + s1 - 1) // tw - tx0 < ntx)
        if not ok:
            return VECTOR_BAD_GRID, b
        pos += 2 + n
    if pos != size:
        return VECTOR_LONG, size - pos
    return DECODED, 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_plane_kernel(buf, starts, lengths, add8, rawbits, vector, randoms, out):
    """Decode one plane of a format-3 blob into ``out`` float32 [B, S, S].

    ``buf``: the blob (uint8); band b's RICE_1 stream is ``buf[starts[b] : starts[b] + lengths[b]]``
    (int64 [B]); ``add8`` uint8 [4, B, S, S] addend byte planes, ``rawbits`` uint8 [B, S*S/8],
    ``vector`` the plane's grid vector. Returns (status, detail): (:data:`DECODED`, numbers of
    ``vector`` used: the caller checks all were), a :func:`check_vector` failure (nothing
    decoded), or (BAD_STREAM, b) when band b's stream is corrupt (its bits run out before its
    pixels, an impossible split code, or it uses more bytes than it has)."""
    nb, s0, s1 = out.shape
    status, detail = check_vector(vector, nb, s0, s1)
    if status != DECODED:
        return status, detail
    npix = s0 * s1
    seq = np.empty((nb, s0, s1), np.int32)
    flat = seq.reshape(nb, npix)
    b = 0
    while b < nb:
        if b + 1 < nb and _in_window(buf, starts, lengths, b) and _in_window(buf, starts, lengths, b + 1):
            # two bands' serial bit chains in one loop (rice_box.rice_ints2); a corrupt pair is
            # decoded again singly below, to name the first bad band
            if rice_ints2(buf, starts[b], lengths[b], starts[b + 1], lengths[b + 1], npix, flat[b], flat[b + 1]) == 0:
                b += 2
                continue
        if _rice_band(buf, starts[b], lengths[b], npix, flat[b]) != 0:
            return BAD_STREAM, b
        b += 1
    return DECODED, join_rice_plane_kernel(seq, add8, rawbits, vector, randoms, out)


@numba.njit(cache=True, nogil=True, inline="always")
def _in_window(buf, starts, lengths, b):
    """Does band b's stream leave the bit reader's PAD bytes inside the blob?"""
    return starts[b] + lengths[b] + PAD <= buf.shape[0]


@numba.njit(cache=True, nogil=True)
def _rice_band(buf, start, n, npix, out):
    """One band's RICE_1 stream into ``out`` (rice_box.rice_ints' status): in place, or from a
    padded copy when the stream is too near the blob's end for the reader's window."""
    if start + n + PAD <= buf.shape[0]:
        return rice_ints(buf, start, n, npix, BLOCK, out)
    padded = np.zeros(n + PAD, np.uint8)
    padded[:n] = buf[start : start + n]
    return rice_ints(padded, 0, n, npix, BLOCK, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def splice_addends(host, values, host_add8, host_bits, add8, bits):
    """Fill ``add8`` uint8 [4, B, S, S] and ``bits`` uint8 [B, S*S/8] (zeroed here) with what
    ``split_plane_kernel(host, values, vector, randoms)`` gives for a host whose format-3 blob
    holds ``host_add8``/``host_bits`` (its image addends and raw bits). Returns :data:`SPLICE_OK`,
    or a reason to encode in full instead: :data:`SPLICE_NOT_A_HOST` (a kept pixel has a non-zero
    addend: the blob is not a bare host) or :data:`SPLICE_AMBIGUOUS` (a raw host pixel is -0.0).

    Why this equals the full encode: the blob was encoded with values = base = host, so a pixel
    is kept (raw bit 0) exactly when its integer gives the host value back bit for bit
    (``back == host``) and ``host + (host - back)`` is the host again, which holds for every
    finite value but -0.0. So a kept pixel's ``back`` is the host value itself and a raw pixel's
    integer did not give the host back, unless the host value is -0.0 (then either case may
    hold, and only quantising again would tell: the caller encodes in full)."""
    nb, s0, s1 = values.shape
    bits[:] = 0
    fword = np.empty(1, np.float32)
    uword = fword.view(np.uint32)
    for b in range(nb):
        i = 0
        for sy in range(s0):
            for sx in range(s1):
                bv, v = host[b, sy, sx], values[b, sy, sx]
                kept = ((host_bits[b, i >> 3] >> (7 - (i & 7))) & 1) == 0
                a, value_ok = v, False
                if kept:
                    if host_add8[0, b, sy, sx] | host_add8[1, b, sy, sx] | host_add8[2, b, sy, sx] | host_add8[3, b, sy, sx]:
                        return SPLICE_NOT_A_HOST
                    a, value_ok = kept_addend(bv, v)
                elif bv == 0.0 and math.copysign(1.0, bv) < 0.0:
                    return SPLICE_AMBIGUOUS
                if not value_ok:
                    bits[b, i >> 3] |= np.uint8(1 << (7 - (i & 7)))
                put_addend(add8, b, sy, sx, a, fword, uword)
                i += 1
    return SPLICE_OK
