"""Stamp format 3's pixel kernels: a quantised float32 plane <-> (file integers, addends, raw bits).

The same recovery as ``fits_quant.encode_plane_kernel`` (format 2): per pixel the integer ``I``
the coadd's fpack quantisation stored (FITS 4.0 section 10.2; cfitsio ``imcompress.c``
``fits_quantize_float`` and its dequantisation), checked to give the host's float32 bits back,
and the float32 added to the host (the arc and its noise; 0 for a host or control). What differs:

* the integers stay absolute int32 (the file's own), one [B, S, S] array, so the survey's own
  integer codec (RICE_1, ``dataset.stamp_v3``) can code them; no smallest-integer offset, and
  the prediction is a separate step (:func:`to_rice_input`, the mean of four causal neighbours);
* the integer of a pixel depends on the host alone: a pixel whose host value comes back from
  ``I`` keeps ``I`` even when the added value does not (that pixel is raw, its addend the value);
  a pixel whose host does not come back (NaN, DITHER_2 zeros, stitched or unquantised bands)
  repeats the previous integer (a zero difference for Rice). So a control and an injection of
  one host carry the same integer bytes and the blob's length does not tell them apart.

``vector`` is the plane's grid vector as format 2 lays it out (per band ``[0]`` for a raw band or
``[n, 0, *QuantGrid.to_vector(0)]``), so ``stamp.grids_from_vector`` reads it unchanged.
The dequantisation and the addend byte planes are ``fits_quant``'s (:func:`~.fits_quant.dequantized`,
``put_addend``, ``addend_plane``), compiled into these kernels: after editing ``fits_quant.py`` clear
this file's numba cache (``__pycache__/quant_split*``) too.
Units: those of the plane (nanomaggies for images, 1/nanomaggy^2 for invvar).
"""

from __future__ import annotations

import numba
import numpy as np

from .fits_quant import _HEADER, _same, addend_plane, band_grid, dequantized, put_addend

_I32_MAX = 2**31 - 1


@numba.njit(cache=True, nogil=True)
def kept_addend(back, v):
    """(addend float32, kept?) of value ``v`` over a host pixel that came back as ``back`` from
    its integer: ``v - back`` when ``back + (v - back)`` gives ``v`` bit for bit, else ``v``
    itself with kept false (the pixel is stored raw). Shared by :func:`split_plane_kernel` and
    ``v3_kernels.splice_addends``, which must agree to the bit."""
    if np.isfinite(v):
        a = np.float32(v - back)
        if _same(np.float32(back + a), v):
            return a, True
    return v, False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def split_plane_kernel(base, values, vector, randoms):
    """(integers int32 [B, S, S], addends uint8 [4, B, S, S] byte planes, raw bits uint8 [B, S*S/8]).

    ``base``: float32 [B, S, S] as read from the file; ``values``: float32 [B, S, S] stored. A band
    none of whose host pixels comes back from an int32 is turned raw as format 2 records it (its
    grid stays, its predictor and smallest-integer slots are set to 0, its integers are 0): every
    pixel raw, the addend the value itself.
    """
    nb, s0, s1 = values.shape
    ints = np.zeros((nb, s0, s1), np.int32)
    add8 = np.empty((4, nb, s0, s1), np.uint8)
    bits = np.zeros((nb, (s0 * s1 + 7) // 8), np.uint8)
    dither = np.empty((s0, s1))
    fword = np.empty(1, np.float32)
    uword = fword.view(np.uint32)
    pos = 0
    for b in range(nb):
        grid, n, g, cols, half, th, oy, ty0, nty, ntx = band_grid(vector, pos, s0, s1, randoms, dither)
        prev, kept, i = np.int64(0), 0, 0
        for sy in range(s0):
            r = (oy + sy) // th - ty0
            for sx in range(s1):
                bv, v = base[b, sy, sx], values[b, sy, sx]
                host_ok, value_ok, a = False, False, v
                if grid:
                    c = cols[3, sx]
                    sc, z = g[_HEADER + r * ntx + c], g[_HEADER + nty * ntx + r * ntx + c]
                    d = dither[sy, sx]
                    if sc > 0.0 and np.isfinite(bv):
                        qi = np.floor((np.float64(bv) - z) / sc + d - half + 0.5)  # the nearest integer
                        if -_I32_MAX - 1 <= qi <= _I32_MAX:
                            back = dequantized(qi, d, half, sc, z)
                            host_ok = _same(back, bv)
                            if host_ok:
                                prev = np.int64(qi)
                                kept += 1
                                a, value_ok = kept_addend(back, v)
                ints[b, sy, sx] = prev
                if not value_ok:
                    bits[b, i >> 3] |= np.uint8(1 << (7 - (i & 7)))
                put_addend(add8, b, sy, sx, a, fword, uword)
                i += 1
        if grid and kept == 0:  # nothing on the grid: the band is raw (as format 2 records it)
            vector[pos + 1] = 0.0
            vector[pos + 2 + 12] = 0.0
        pos += 2 + n if grid else 1
    return ints, add8, bits


# -- the integers as Rice sees them --------------------------------------------------------------
PREDICT_MEAN4 = 2  # the predictor code in a band's grid vector (format 2 used 0 plain and 1 zigzag)


@numba.njit(cache=True, nogil=True, inline="always")
def _mean4(x, sy, sx, s1):
    """The mean of the causal neighbours W, NW, N, NE of pixel (sy, sx) (those that exist; the
    previous pixel along the raster at a row start), rounded half up: the prediction of the
    integer at (sy, sx) from integers decoded before it."""
    if sy == 0:
        return x[0, sx - 1] if sx > 0 else np.int64(0)
    if sx == 0:
        return (x[sy - 1, 0] + x[sy - 1, 1] + 1) >> 1 if s1 > 1 else x[sy - 1, 0]
    up, nw, w = x[sy - 1, sx], x[sy - 1, sx - 1], x[sy, sx - 1]
    ne = x[sy - 1, sx + 1] if sx + 1 < s1 else up
    return (w + nw + up + ne + 2) >> 2


@numba.njit(cache=True, nogil=True, inline="always")
def _wrap32(v):
    """``v`` modulo 2^32 as a signed 32-bit value (int64)."""
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


@numba.njit(cache=True, nogil=True, error_model="numpy")
def to_rice_input(ints):
    """The int32 sequence handed to RICE_1 per band: the running sum (modulo 2^32) of the
    residuals of the integers from :func:`_mean4`. RICE_1 codes the differences of successive
    values (FITS 4.0 section 10.4.1), so it then codes the residuals, whose spread is ~1.1x the
    pixel noise against ~1.4x for plain differences (~5 % fewer bytes on DR10-like noise).
    Modulo 2^32 throughout, so any int32 plane comes back exactly (RICE_1 itself round-trips
    any int32 sequence). int32 [B, S, S] -> int32 [B, S, S]."""
    nb, s0, s1 = ints.shape
    out = np.empty((nb, s0, s1), np.int32)
    x = np.empty((s0, s1), np.int64)
    for b in range(nb):
        acc = np.int64(0)
        for sy in range(s0):
            for sx in range(s1):
                x[sy, sx] = ints[b, sy, sx]
                acc = _wrap32(acc + x[sy, sx] - _mean4(x, sy, sx, s1))
                out[b, sy, sx] = acc
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def join_rice_plane_kernel(values, add8, rawbits, vector, randoms, out):
    """Decode into ``out`` float32 [B, S, S]: the inverse of :func:`split_plane_kernel` followed
    by :func:`to_rice_input`, from ``values`` (the RICE_1 output, int32 [B, S, S]), in one pass
    per band: each integer is recovered from its :func:`_mean4` prediction as the pass reaches
    it, dequantised and added to its addend (byte planes ``add8`` uint8 [4, B, S, S], read as
    one float32 plane per band first: ``fits_quant.addend_plane``). A raw pixel (``rawbits``)
    or a band without a grid is its addend. Returns how many numbers of ``vector`` it used (the
    caller checks all were)."""
    nb, s0, s1 = out.shape
    npix = s0 * s1
    dither = np.empty((s0, s1))
    x = np.empty((s0, s1), np.int64)  # the band's integers so far (the predictor reads them)
    words = np.empty(npix, np.uint32)
    addend = words.view(np.float32)
    pos = 0
    for b in range(nb):
        addend_plane(add8, b, words)
        grid, n, g, cols, half, th, oy, ty0, nty, ntx = band_grid(vector, pos, s0, s1, randoms, dither)
        pos += 2 + n if grid else 1
        prev, i = np.int64(0), 0
        for sy in range(s0):
            r = (oy + sy) // th - ty0
            scales, zeros = _HEADER + r * ntx, _HEADER + nty * ntx + r * ntx
            for sx in range(s1):
                v = np.int64(values[b, sy, sx])
                q = _wrap32(v - prev + _mean4(x, sy, sx, s1))
                x[sy, sx] = q
                prev = v
                if not grid or (rawbits[b, i >> 3] >> (7 - (i & 7))) & 1:
                    out[b, sy, sx] = addend[i]
                else:
                    c = cols[3, sx]
                    out[b, sy, sx] = np.float32(dequantized(q, dither[sy, sx], half, g[scales + c], g[zeros + c]) + addend[i])
                i += 1
    return pos

