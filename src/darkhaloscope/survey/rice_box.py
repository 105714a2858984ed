"""One compiled call from a RICE_1 file's compressed tile bytes to a stamp's float32 box.

A DR10 stamp (64 x 64) touches ~2.7 of the 100 x 100 tiles of each RICE file (image and invvar,
legacypipe ``py/legacypipe/survey.py`` ``get_compression_args``, DR10 tags). :func:`decode_box`
decodes each tile's integers only down to the box's last row (RICE is sequential) and dequantises
only the box's pixels, straight into the output. :func:`decode_boxes` does it for every
RICE file of a stamp in one call, two files at a time (:func:`rice_ints2`), from the tile bytes
:mod:`.rice_io` read (:mod:`.rice_stamp` packs the files' tile tables). Every kernel they call lives
in this file: numba's cache is invalidated per source file only, so a kernel compiled into another
file's could stay stale after an edit.

Bit reader: cfitsio ``ricecomp.c`` ``fits_rdecomp`` (32-pixel blocks, a 5-bit split code per
block, fs + 1 = 0 for an all-zero block, fs = 25 for raw 32-bit differences, otherwise a unary
high part and fs low bits of zigzag-mapped differences of successive pixels), over a left-aligned
64-bit window topped up by one unaligned big-endian load without a branch (the "variant 4" refill
of F. Giesen, "Reading bits in far too many ways", 2018), leading zeros counted by LLVM's ``ctlz``.
Loads stay inside ``buf`` (:data:`PAD`); a tile whose bits run out before its pixels is corrupt.

Dequantisation as cfitsio (FITS 4.0 section 10.2; ``dataset.fits_quant`` holds the dither
sequence): ``float32((I - R + 0.5) * ZSCALE + ZZERO)`` for SUBTRACTIVE_DITHER_1/2 (DITHER_2:
I = -2147483646 is an exact 0), ``float32(I * ZSCALE + ZZERO)`` for NO_DITHER, NaN for ZBLANK;
R found by jumping along the sequence, so pixels left of the box are never dequantised.
Units: whatever the file holds (nanomaggies, 1/nanomaggy^2).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

FSBITS, FSMAX, BBITS = 5, 25, 32  # RICE_1 with 32-bit pixels (cfitsio ricecomp.c, bytepix 4)
BLOCK = 32  # pixels per block (BLOCKSIZE; cfitsio's default, legacypipe's): a constant, so LLVM specialises the decoder for it
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


# codes per window refill for split code fs (48 // (fs + 3), >= 1), looked up: a division costs ~40-90 cycles
PER_REFILL = np.array([max(1, 48 // (fs + 3)) for fs in range(FSMAX)] + [1], np.int64)

# Bytes past a tile's end the bit reader may load. Every block head and every slow-path refill
# checks the next load starts at most 8 bytes past the tile's end; the Rice codes' regular refills
# are not checked (one compare and branch less per refill): a block has at most 32 of them, each
# advancing <= 7 bytes, so no load starts past end + 8 + 7 + 224 or reads past end + 247.
PAD = 256


@numba.njit(cache=True, nogil=True, inline="always")
def _load64(buf, c):
    """The 8 bytes of ``buf`` from byte ``c`` as a big-endian uint64 (``c`` unsigned: no wraparound
    check, so LLVM fuses the byte loads into one load + byte swap)."""
    v = np.uint64(0)
    for i in range(8):
        v = (v << np.uint64(8)) | np.uint64(buf[c + np.uint64(i)])
    return v


@numba.njit(cache=True, nogil=True, inline="always")
def _refill(buf, c, w, nb):
    """Top the window up to 56..63 bits without a branch: load the 8 bytes at ``c``, shift them
    in under the ``nb`` valid bits, advance ``c`` by the whole bytes that fit."""
    w |= _load64(buf, c) >> nb
    return c + ((np.uint64(63) - nb) >> np.uint64(3)), w, nb | np.uint64(56)


@numba.njit(cache=True, nogil=True, inline="always")
def _start(buf, start, nbytes):
    """A tile's reader at its first pixel: (next byte, window, its bits, last byte a load may start at, first pixel)."""
    return np.uint64(start + 4), np.uint64(0), np.uint64(0), np.uint64(start + nbytes + 8), np.uint32(_load64(buf, np.uint64(start)) >> np.uint64(32))


@numba.njit(cache=True, nogil=True, inline="always")
def _head(buf, c, w, nb, cmax):
    """A block's split code: (c, w, nb, fs), fs -1 (all-zero block) .. FSMAX (raw), FSMAX + 1
    or more when the stream is corrupt (no bytes left, or split codes 27..31)."""
    if c > cmax:
        return c, w, nb, FSMAX + 1
    c, w, nb = _refill(buf, c, w, nb)
    return c, w << np.uint64(FSBITS), nb - np.uint64(FSBITS), np.int64(w >> np.uint64(64 - FSBITS)) - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _code(buf, c, w, nb, cmax, sfs):
    """One Rice code with split ``sfs`` < FSMAX: (c, w, nb, zigzag-mapped difference, ok). The
    window must hold nb <= 63 bits; the fast path's one shift by z + 1 + sfs <= nb is then defined."""
    u1 = np.uint64(1)
    z = _clz64(w)
    t = z + u1 + sfs
    if t <= nb:  # unary zeros, stop bit and low bits all in the window (the common case): the code's
        # top t bits are 1 then the fs low bits, (1 << fs) + low; difference (z << fs) + low
        return c, w << t, nb - t, (w >> (np.uint64(64) - t)) + (z << sfs) - (u1 << sfs), True
    nzero = np.uint64(0)  # the code does not fit the window (rare): refill as needed
    while z >= nb:  # the zeros run past the valid bits: count them, refill
        nzero += nb
        w, nb = np.uint64(0), np.uint64(0)
        if c > cmax:
            return c, w, nb, nzero, False
        c, w, nb = _refill(buf, c, w, nb)
        z = _clz64(w)
    nzero += z
    w = (w << z) << u1
    nb -= z + u1
    if c > cmax:
        return c, w, nb, nzero, False
    c, w, nb = _refill(buf, c, w, nb)
    low = (w >> (np.uint64(63) - sfs)) >> u1
    return c, w << sfs, nb - sfs, (nzero << sfs) | low, True


@numba.njit(cache=True, nogil=True, inline="always")
def _unzig(lastpix, d):
    """The next pixel (uint32) from the previous one and a zigzag-mapped difference (uint32), without a branch."""
    return np.uint32(lastpix + ((d >> np.uint32(1)) ^ (np.uint32(0) - (d & np.uint32(1)))))


@numba.njit(cache=True, nogil=True, inline="always")
def _block(buf, c, w, nb, cmax, fs, lastpix, out, i, imax):
    """Pixels ``out[i:imax]`` of one block with split code ``fs`` (-1 .. FSMAX): (c, w, nb, lastpix, ok).
    Rice codes: one unchecked refill per :data:`PER_REFILL` codes (see :data:`PAD`)."""
    if fs < 0:  # every difference of the block is zero
        for j in range(i, imax):
            out[np.uint64(j)] = np.int32(lastpix)
        return c, w, nb, lastpix, True
    if fs == FSMAX:  # differences stored raw, 32 bits each
        for j in range(i, imax):
            c, w, nb = _refill(buf, c, w, nb)
            lastpix = _unzig(lastpix, np.uint32(w >> np.uint64(32)))
            w, nb = w << np.uint64(BBITS), nb - np.uint64(BBITS)
            out[np.uint64(j)] = np.int32(lastpix)
        return c, w, nb, lastpix, True
    sfs, per = np.uint64(fs), PER_REFILL[fs]
    j = i
    while j < imax:
        c, w, nb = _refill(buf, c, w, nb)
        jend = min(j + per, imax)
        for jj in range(j, jend):
            c, w, nb, d, ok = _code(buf, c, w, nb, cmax, sfs)
            if not ok:
                return c, w, nb, lastpix, False
            lastpix = _unzig(lastpix, np.uint32(d))
            out[np.uint64(jj)] = np.int32(lastpix)
        j = jend
    return c, w, nb, lastpix, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rice_ints(buf, start, nbytes, n, block, out):
    """Decode the first ``n`` pixels of the RICE_1 tile ``buf[start : start + nbytes]`` into ``out``
    (int32); ``buf`` must hold :data:`PAD` bytes after the tile (any values). Returns 0, or -1 when
    the tile is corrupt (its bits run out before its pixels, or a split code is impossible; stopping
    early detects only corruption in the bits read). ``block`` must be :data:`BLOCK`.

    The window ``w`` holds ``nb`` unread bits left-aligned; the bits consumed are checked against
    the tile's length at the end. Rice codes refill once per 48 // (fs + 3) codes (~fs + 2 bits
    each, so that many fit in 56; one that does not takes the slow path, which refills): 3.9 ->
    2.8 ns per pixel on DR10-format tiles against a refill per pixel."""
    if nbytes < 4 or block != BLOCK:
        return -1
    c, w, nb, cmax, lastpix = _start(buf, start, nbytes)
    i = 0
    while i < n:
        c, w, nb, fs = _head(buf, c, w, nb, cmax)
        if fs > FSMAX:
            return -1
        imax = min(i + BLOCK, n)
        c, w, nb, lastpix, ok = _block(buf, c, w, nb, cmax, fs, lastpix, out, i, imax)
        if not ok:
            return -1
        i = imax
    return 0 if c * np.uint64(8) - nb <= np.uint64((start + nbytes) * 8) else -1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rice_ints2(buf, sa, na, sb, nbb, n, outa, outb):
    """:func:`rice_ints` of two tiles of ``buf`` (at ``sa``/``sb``, ``na``/``nbb`` bytes, ``n`` pixels
    each, into ``outa``/``outb``) in one loop. Each tile's decoding is one serial chain (a code's
    position depends on the previous code's length); two independent chains in one loop body let
    the CPU overlap them. Blocks where both tiles are Rice-coded are decoded code by code in
    lockstep, the others (all-zero, raw) one tile after the other: 1.7 ns per pixel on the DR10
    bench's tiles against 3.0 singly (three or four streams: no faster, the loop is then bound by
    instruction throughput). Returns 0, 1 (tile a corrupt) or 2 (tile b corrupt; a checked
    first: callers re-decode singly to name the first bad tile)."""
    if na < 4:
        return 1
    if nbb < 4:
        return 2
    ca, wa, nba, cmaxa, lasta = _start(buf, sa, na)
    cb, wb, nbbits, cmaxb, lastb = _start(buf, sb, nbb)
    i = 0
    while i < n:
        ca, wa, nba, fa = _head(buf, ca, wa, nba, cmaxa)
        cb, wb, nbbits, fb = _head(buf, cb, wb, nbbits, cmaxb)
        if max(fa, fb) > FSMAX:
            return 1 if fa > FSMAX else 2
        imax = min(i + BLOCK, n)
        if 0 <= fa < FSMAX and 0 <= fb < FSMAX:  # both Rice-coded: lockstep, both refilled every min(per) codes
            sfa, sfb = np.uint64(fa), np.uint64(fb)
            per = min(PER_REFILL[fa], PER_REFILL[fb])
            j = i
            while j < imax:
                ca, wa, nba = _refill(buf, ca, wa, nba)
                cb, wb, nbbits = _refill(buf, cb, wb, nbbits)
                jend = min(j + per, imax)
                for jj in range(j, jend):
                    ca, wa, nba, da, oka = _code(buf, ca, wa, nba, cmaxa, sfa)
                    cb, wb, nbbits, db, okb = _code(buf, cb, wb, nbbits, cmaxb, sfb)
                    if not (oka and okb):
                        return 1 if not oka else 2
                    lasta = _unzig(lasta, np.uint32(da))
                    lastb = _unzig(lastb, np.uint32(db))
                    outa[np.uint64(jj)] = np.int32(lasta)
                    outb[np.uint64(jj)] = np.int32(lastb)
                j = jend
        else:
            ca, wa, nba, lasta, ok = _block(buf, ca, wa, nba, cmaxa, fa, lasta, outa, i, imax)
            if not ok:
                return 1
            cb, wb, nbbits, lastb, ok = _block(buf, cb, wb, nbbits, cmaxb, fb, lastb, outb, i, imax)
            if not ok:
                return 2
        i = imax
    if ca * np.uint64(8) - nba > np.uint64((sa + na) * 8):
        return 1
    return 0 if cb * np.uint64(8) - nbbits <= np.uint64((sb + nbb) * 8) else 2


@numba.njit(cache=True, nogil=True, inline="always")
def _seed_at(k, p, dither0, randoms):
    """(iseed, index) of the dither value R of pixel ``p`` of tile ``k`` (0-based, row-major): cfitsio
    starts at int(R[iseed] * 500), next seed at 10000 (``dataset.fits_quant._dither``'s walk; see the module doc)."""
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
    n = c1 - c0
    for r in range(r0, r1):
        src, dst = ints[r * w + c0 : r * w + c1], out[oy + r - r0, ox : ox + n]
        if method == 0:
            for q in range(n):
                v = src[q]
                x = np.float32(np.float64(v) * scale + zero)
                dst[q] = np.float32(np.nan) if v == zblank else x
            continue
        iseed, idx = _seed_at(k, r * w + c0, dither0, randoms)
        q = 0
        while q < n:  # runs of the dither sequence without a seed change: selects, no branches (LLVM vectorises them)
            m = min(n - q, 10000 - idx)
            rnd = randoms[idx : idx + m]
            for p in range(m):
                v = src[q + p]
                x = np.float32((np.float64(v) - rnd[p] + 0.5) * scale + zero)
                x = np.float32(0.0) if method == 2 and v == -2147483646 else x
                dst[q + p] = np.float32(np.nan) if v == zblank else x
            q, idx = q + m, idx + m
            if idx == 10000:
                iseed = (iseed + 1) % 10000
                idx = int(randoms[iseed] * 500.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_box(buf, offsets, nbytes, th, tw, ny, nx, method, dither0, scale, zero, zblank, randoms, y0, y1, x0, x1, ints, out):
    """Pixels [y0:y1, x0:x1] of a RICE_1 float image into ``out`` (float32 [y1 - y0, x1 - x0]).

    Tile k (row-major over the (ceil(ny / th), ceil(nx / tw)) grid) is ``buf[offsets[k] :
    offsets[k] + nbytes[k]]``, RICE_1 with 32-pixel blocks; ``scale``/``zero`` float64 [n tiles];
    ``ints`` int32 scratch [2, th * tw]. Neighbouring tiles of a tile row of the same width are
    decoded two at a time (:func:`rice_ints2`; a pair with a bad tile is decoded again singly).
    Returns (bytes of the tiles used, -1) or (ERR_*, the first bad tile)."""
    grid1 = (nx + tw - 1) // tw
    used = 0
    for ty in range(y0 // th, (y1 - 1) // th + 1):
        h = min(th, ny - ty * th)
        r0, r1 = max(y0, ty * th) - ty * th, min(y1, ty * th + h) - ty * th
        tx, tx1 = x0 // tw, (x1 - 1) // tw
        while tx <= tx1:
            k = ty * grid1 + tx
            w = min(tw, nx - tx * tw)
            if offsets[k] < 0 or offsets[k] + nbytes[k] > buf.shape[0]:
                return ERR_TRUNCATED, k
            n, status = 1, 0
            if (tx < tx1 and w == min(tw, nx - (tx + 1) * tw) and offsets[k + 1] >= 0
                    and max(offsets[k] + nbytes[k], offsets[k + 1] + nbytes[k + 1]) + PAD <= buf.shape[0]):
                n = 2 if rice_ints2(buf, offsets[k], nbytes[k], offsets[k + 1], nbytes[k + 1], r1 * w, ints[0], ints[1]) == 0 else 1
            if n == 1 and offsets[k] + nbytes[k] + PAD <= buf.shape[0]:
                status = rice_ints(buf, offsets[k], nbytes[k], r1 * w, BLOCK, ints[0])
            elif n == 1:  # the tile ends the buffer: decode a copy with room for the window
                padded = np.zeros(nbytes[k] + PAD, np.uint8)
                padded[: nbytes[k]] = buf[offsets[k] : offsets[k] + nbytes[k]]
                status = rice_ints(padded, 0, nbytes[k], r1 * w, BLOCK, ints[0])
            if n == 1 and status != 0:
                return ERR_CORRUPT, k
            for i in range(n):
                used += nbytes[k + i]
                c0, c1 = max(x0, (tx + i) * tw) - (tx + i) * tw, min(x1, (tx + i) * tw + w) - (tx + i) * tw
                _dequantize_rows(ints[i], k + i, w, r0, r1, c0, c1, method, dither0, scale[k + i], zero[k + i], zblank, randoms,
                                 out, ty * th + r0 - y0, (tx + i) * tw + c0 - x0)
            tx += n
    return used, -1


# --- every RICE file of a stamp at once (rice_stamp.RiceStamp; its tiles read by rice_io.read_spans) ---
# meta columns (int64 [n files, N_META]): first tile in the packed arrays, image rows / columns,
# tile rows / columns, quantisation method, ZDITHER0, ZBLANK
BASE, NY, NX, TH, TW, METHOD, DITHER0, ZBLANK, N_META = range(9)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _decode_pair(buf, rel, nbytes, scale, zero, meta, f, randoms, y0, y1, x0, x1, ints, out):
    """Box [y0:y1, x0:x1] of files f and f + 1 (same image and tile shapes) into ``out[f]``,
    ``out[f + 1]``: each tile of the box decoded in both files at once (:func:`rice_ints2`; the
    same tile of both holds the same pixels count), then dequantised as :func:`decode_box` does.
    Returns (bytes used, True), or (0, False) on a tile out of ``buf`` or corrupt (the caller
    re-decodes the two files singly, which names the first bad tile)."""
    ba, bb = meta[f, BASE], meta[f + 1, BASE]
    th, tw, ny, nx = meta[f, TH], meta[f, TW], meta[f, NY], meta[f, NX]
    grid1 = (nx + tw - 1) // tw
    used = 0
    for ty in range(y0 // th, (y1 - 1) // th + 1):
        h = min(th, ny - ty * th)
        r0, r1 = max(y0, ty * th) - ty * th, min(y1, ty * th + h) - ty * th
        for tx in range(x0 // tw, (x1 - 1) // tw + 1):
            k = ty * grid1 + tx
            w = min(tw, nx - tx * tw)
            ka, kb = ba + k, bb + k
            if min(rel[ka], rel[kb]) < 0 or max(rel[ka] + nbytes[ka], rel[kb] + nbytes[kb]) + PAD > buf.shape[0]:
                return 0, False
            if rice_ints2(buf, rel[ka], nbytes[ka], rel[kb], nbytes[kb], r1 * w, ints[0], ints[1]) != 0:
                return 0, False
            used += nbytes[ka] + nbytes[kb]
            c0, c1 = max(x0, tx * tw) - tx * tw, min(x1, tx * tw + w) - tx * tw
            oy, ox = ty * th + r0 - y0, tx * tw + c0 - x0
            for g, kg, i in ((f, ka, 0), (f + 1, kb, 1)):
                _dequantize_rows(ints[i], k, w, r0, r1, c0, c1, meta[g, METHOD], meta[g, DITHER0], scale[kg], zero[kg],
                                 meta[g, ZBLANK], randoms, out[g], oy, ox)
    return used, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_boxes(buf, rel, nbytes, scale, zero, meta, randoms, y0, y1, x0, x1, ints, out):
    """Box [y0:y1, x0:x1] of every file f into ``out[f]`` (float32 [n files, y1 - y0, x1 - x0]),
    from the tiles :func:`.rice_io.read_spans` placed in ``buf`` (with :data:`.rice_box.PAD` spare bytes);
    ``ints`` int32 scratch [2, tile pixels]. Files are taken in pairs of the same geometry
    (:func:`_decode_pair`; a grz stamp: 3 pairs), an odd one or a failed pair singly (:func:`decode_box`).
    Returns (bytes used, -1, -1) or (ERR_*, file, tile of that file)."""
    used, f, nf = 0, 0, meta.shape[0]
    while f < nf:
        if f + 1 < nf and meta[f, NY] == meta[f + 1, NY] and meta[f, NX] == meta[f + 1, NX] and meta[f, TH] == meta[f + 1, TH] and meta[f, TW] == meta[f + 1, TW]:
            n, ok = _decode_pair(buf, rel, nbytes, scale, zero, meta, f, randoms, y0, y1, x0, x1, ints, out)
            if ok:
                used += n
                f += 2
                continue
        for g in range(f, min(f + 2, nf)):  # singly: an unpaired file, or a pair with a bad tile
            b = meta[g, BASE]
            e = meta[g + 1, BASE] if g + 1 < nf else nbytes.shape[0]
            status, k = decode_box(buf, rel[b:e], nbytes[b:e], meta[g, TH], meta[g, TW], meta[g, NY], meta[g, NX], meta[g, METHOD],
                                   meta[g, DITHER0], scale[b:e], zero[b:e], meta[g, ZBLANK], randoms, y0, y1, x0, x1, ints, out[g])
            if k >= 0:
                return status, g, k
            used += status
        f += 2
    return used, -1, -1
