"""One compiled call from a RICE_1 file's compressed tile bytes to a stamp's float32 box.

A DR10 stamp (64 x 64) touches ~2.7 of the 100 x 100 tiles of each RICE file (image and invvar,
legacypipe ``py/legacypipe/survey.py`` ``get_compression_args``, DR10 tags). :func:`decode_box`
walks those tiles in one call: it decodes each tile's integers only down to the box's last row
(RICE is sequential), and dequantises only the box's own pixels, straight into the output.

Bit reader: the algorithm of cfitsio ``ricecomp.c`` ``fits_rdecomp`` (32-pixel blocks, a 5-bit
split code per block, fs + 1 = 0 for an all-zero block, fs = 25 for raw 32-bit differences,
otherwise a unary high part and fs low bits, zigzag-mapped differences of successive pixels),
written here over a left-aligned 64-bit window refilled 32 bits at a time, with the unary part's
leading zeros counted by LLVM's ``ctlz`` (one instruction). Reads never leave ``buf``: bytes past
its end read as zeros, and a tile that consumes more bits than it has is reported corrupt.

Dequantisation as cfitsio (FITS 4.0 section 10.2; ``dataset.fits_quant`` holds the dither
sequence): ``float32((I - R + 0.5) * ZSCALE + ZZERO)`` for SUBTRACTIVE_DITHER_1/2 (DITHER_2:
I = -2147483646 is an exact 0), ``float32(I * ZSCALE + ZZERO)`` for NO_DITHER, NaN for ZBLANK.
R for pixel p of tile k is found by jumping along the sequence (it advances one value per pixel
of the tile, row-major), so pixels left of the box are never dequantised.
Units: whatever the file holds (nanomaggies, 1/nanomaggy^2).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

FSBITS, FSMAX, BBITS = 5, 25, 32  # RICE_1 with 32-bit pixels (cfitsio ricecomp.c, bytepix 4)
ERR_CORRUPT, ERR_TRUNCATED = -1, -2  # decode_box status codes (a tile index is reported too)


@intrinsic
def _clz64(typingctx, x):
    """Leading zero bits of a uint64 (64 for 0): LLVM's ``ctlz``."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(1)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ctlz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 0)])

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _load32(buf, c):
    """Big-endian 32 bits of ``buf`` at byte ``c`` (bytes past the end read as 0)."""
    n = buf.shape[0]
    if c + 4 <= n:
        return (np.uint64(buf[c]) << np.uint64(24)) | (np.uint64(buf[c + 1]) << np.uint64(16)) | (np.uint64(buf[c + 2]) << np.uint64(8)) | np.uint64(buf[c + 3])
    v = np.uint64(0)
    for i in range(4):
        v = v << np.uint64(8)
        if c + i < n:
            v |= np.uint64(buf[c + i])
    return v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rice_ints(buf, start, nbytes, n, block, out):
    """Decode the first ``n`` pixels of the RICE_1 tile ``buf[start : start + nbytes]`` into ``out``
    (int32). Returns 0, or -1 when the tile is corrupt (its bits run out before its pixels, or a
    split code is impossible). Stopping early (``n`` below the tile's pixels) detects only
    corruption in the bits it reads."""
    if nbytes < 4:
        return -1
    limit = (start + nbytes) * 8  # bit position the tile must not pass
    lastpix = np.uint32(_load32(buf, start))
    c = start + 4  # next byte to load
    w = np.uint64(0)  # bit window, left-aligned: its top nb bits are the next bits; lower bits are 0
    nb = 0
    one = np.uint64(1)
    i = 0
    while i < n:
        if nb <= 32:
            w |= _load32(buf, c) << np.uint64(32 - nb)
            c += 4
            nb += 32
        fs = np.int64(w >> np.uint64(64 - FSBITS)) - 1
        w <<= np.uint64(FSBITS)
        nb -= FSBITS
        if fs > FSMAX:  # split codes 27..31 never occur in a valid stream
            return -1
        imax = min(i + block, n)
        if fs < 0:  # every difference of the block is zero
            for j in range(i, imax):
                out[j] = np.int32(lastpix)
            i = imax
        elif fs == FSMAX:  # differences stored raw, 32 bits each
            for j in range(i, imax):
                if nb <= 32:
                    w |= _load32(buf, c) << np.uint64(32 - nb)
                    c += 4
                    nb += 32
                diff = np.uint32(w >> np.uint64(32))
                w <<= np.uint64(32)
                nb -= 32
                diff = (diff >> np.uint32(1)) if (diff & np.uint32(1)) == 0 else ~(diff >> np.uint32(1))
                lastpix = np.uint32(lastpix + diff)
                out[j] = np.int32(lastpix)
            i = imax
        else:
            sfs = np.uint64(fs)
            for j in range(i, imax):
                if nb <= 32:
                    w |= _load32(buf, c) << np.uint64(32 - nb)
                    c += 4
                    nb += 32
                nzero = 0
                while w == 0:  # a run of zeros longer than the window (rare): consume it all
                    nzero += nb
                    nb = 0
                    if c * 8 > limit:  # ran past the tile's bytes
                        return -1
                    w = _load32(buf, c) << np.uint64(32)
                    c += 4
                    nb = 32
                z = np.int64(_clz64(w))
                nzero += z
                w = (w << np.uint64(z)) << one  # two shifts: z + 1 may be 64
                nb -= z + 1
                if nb < fs:
                    w |= _load32(buf, c) << np.uint64(32 - nb)
                    c += 4
                    nb += 32
                low = (w >> np.uint64(63 - fs)) >> one  # top fs bits (0 when fs = 0)
                w <<= sfs
                nb -= fs
                diff = np.uint32((np.uint64(nzero) << sfs) | low)
                diff = (diff >> np.uint32(1)) if (diff & np.uint32(1)) == 0 else ~(diff >> np.uint32(1))
                lastpix = np.uint32(lastpix + diff)
                out[j] = np.int32(lastpix)
            i = imax
        if c * 8 - nb > limit:  # consumed bits past the tile's end
            return -1
    return 0


@numba.njit(cache=True, nogil=True, inline="always")
def _seed_at(k, p, dither0, randoms):
    """(iseed, index) of the dither value R of pixel ``p`` of tile ``k`` (both 0-based, row-major):
    cfitsio starts at int(R[iseed] * 500) and moves to the next seed each time it reaches 10000."""
    iseed = (k + dither0 - 1) % 10000
    idx = int(randoms[iseed] * 500.0) + p
    while idx >= 10000:
        idx -= 10000
        iseed = (iseed + 1) % 10000
        idx += int(randoms[iseed] * 500.0)
    return iseed, idx


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dequantize_rows(ints, k, w, r0, r1, c0, c1, method, dither0, scale, zero, zblank, randoms, out, oy, ox):
    """Pixels [r0:r1, c0:c1] of tile ``k`` (row width ``w``; integers ``ints``, row-major) into
    ``out[oy + r - r0, ox + c - c0]`` as float32, as cfitsio dequantises."""
    for r in range(r0, r1):
        orow = oy + r - r0
        if method == 0:
            for cc in range(c0, c1):
                v = ints[r * w + cc]
                out[orow, ox + cc - c0] = np.nan if v == zblank else np.float32(np.float64(v) * scale + zero)
            continue
        iseed, idx = _seed_at(k, r * w + c0, dither0, randoms)
        for cc in range(c0, c1):
            v = ints[r * w + cc]
            if v == zblank:
                out[orow, ox + cc - c0] = np.nan
            elif method == 2 and v == -2147483646:
                out[orow, ox + cc - c0] = 0.0
            else:
                out[orow, ox + cc - c0] = np.float32((np.float64(v) - randoms[idx] + 0.5) * scale + zero)
            idx += 1
            if idx == 10000:
                iseed = (iseed + 1) % 10000
                idx = int(randoms[iseed] * 500.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_box(buf, offsets, nbytes, th, tw, ny, nx, block, method, dither0, scale, zero, zblank, randoms, y0, y1, x0, x1, ints, out):
    """Pixels [y0:y1, x0:x1] of a RICE_1 float image into ``out`` (float32 [y1 - y0, x1 - x0]).

    Tile k (row-major over the (ceil(ny / th), ceil(nx / tw)) grid) is ``buf[offsets[k] :
    offsets[k] + nbytes[k]]``; ``scale``/``zero`` float64 [n tiles]; ``ints`` int32 scratch of
    th * tw. Returns (bytes of the tiles used, -1) or (ERR_*, the first bad tile)."""
    grid1 = (nx + tw - 1) // tw
    used = 0
    for ty in range(y0 // th, (y1 - 1) // th + 1):
        h = min(th, ny - ty * th)
        r0, r1 = max(y0, ty * th) - ty * th, min(y1, ty * th + h) - ty * th
        for tx in range(x0 // tw, (x1 - 1) // tw + 1):
            k = ty * grid1 + tx
            w = min(tw, nx - tx * tw)
            if offsets[k] < 0 or offsets[k] + nbytes[k] > buf.shape[0]:
                return ERR_TRUNCATED, k
            if rice_ints(buf, offsets[k], nbytes[k], r1 * w, block, ints) != 0:
                return ERR_CORRUPT, k
            used += nbytes[k]
            c0, c1 = max(x0, tx * tw) - tx * tw, min(x1, tx * tw + w) - tx * tw
            _dequantize_rows(ints, k, w, r0, r1, c0, c1, method, dither0, scale[k], zero[k], zblank, randoms,
                             out, ty * th + r0 - y0, tx * tw + c0 - x0)
    return used, -1
