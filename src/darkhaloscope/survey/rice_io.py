"""One compiled call reading the compressed tiles a stamp's box touches in several local files.

:func:`read_spans` plans the byte spans (one per tile row of each file when its tiles lie back to
back in the heap, as cfitsio writes a tile row) and reads each with libc's ``pread`` from compiled
code (declared as an external function, so numba's cache keeps working; no Python loop around the
~10 system calls of a grz stamp). :func:`.rice_box.decode_boxes` then decodes the buffer. The two
are separate compiled calls (~1 us of dispatch) so that no kernel here calls one of
:mod:`.rice_box` (numba's cache is invalidated per source file only).

Units: bytes.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types

# geometry columns (int64 [n files, N_GEOM]) of the packed tile tables: first tile in the packed
# arrays, image columns, tile rows, tile columns
G_BASE, G_NX, G_TH, G_TW, N_GEOM = range(5)
ERR_SHORT_READ, ERR_BUFFER = -3, -4  # read_spans status codes (rice_box's are -1, -2)
# POSIX pread(fd, buf, count, offset) -> bytes read or -1 (the pointer passed as an address:
# the same register on the 64-bit ABIs numba targets); an external symbol keeps the cache usable
_pread = types.ExternalFunction("pread", types.intp(types.intc, types.uintp, types.uintp, types.int64))
PREAD_RETRIES = 4  # -1 (EINTR and the like) is retried this many times before a short read is reported


@numba.njit(cache=True, nogil=True)
def plan_reads(geom, offsets, nbytes, after, y0, y1, x0, x1, spans, rel):
    """Byte spans covering the tiles that box [y0:y1, x0:x1] touches in every file.

    ``offsets``/``nbytes`` int64 [all tiles]: file offsets and sizes of every file's tiles,
    packed (file f's tile k at ``geom[f, G_BASE] + k``); ``after[i]``: packed tile i + 1 follows
    tile i in the same file's heap. Writes ``spans[j] = (file, file offset, bytes)`` (int64
    [>= spans needed, 3]) and, for every tile read, ``rel[i]`` = its offset in the read buffer
    (spans laid back to back from 0). Returns (spans, total bytes)."""
    n = 0
    pos = 0
    for f in range(geom.shape[0]):
        base, th, tw = geom[f, G_BASE], geom[f, G_TH], geom[f, G_TW]
        grid1 = (geom[f, G_NX] + tw - 1) // tw
        s0, s1 = x0 // tw, (x1 - 1) // tw
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            k = base + ty * grid1 + s0
            k1 = base + ty * grid1 + s1
            while k <= k1:
                e = k
                while e < k1 and after[e]:  # extend the span over tiles lying back to back
                    e += 1
                a = offsets[k]
                ln = offsets[e] + nbytes[e] - a
                for i in range(k, e + 1):
                    rel[i] = offsets[i] - a + pos
                spans[n, 0], spans[n, 1], spans[n, 2] = f, a, ln
                n += 1
                pos += ln
                k = e + 1
    return n, pos


@numba.njit(cache=True, nogil=True)
def _pread_all(fd, buf, pos, ln, offset):
    """Read ``ln`` bytes at file ``offset`` into ``buf[pos:]``; returns the bytes read (< ln at EOF or on errors)."""
    got, tries = 0, 0
    base = buf.ctypes.data + np.uintp(pos)
    while got < ln:
        r = _pread(np.intc(fd), base + np.uintp(got), np.uintp(ln - got), np.int64(offset + got))
        if r == 0:
            break
        if r < 0:
            tries += 1
            if tries >= PREAD_RETRIES:
                break
            continue
        got += r
    return got


@numba.njit(cache=True, nogil=True)
def read_spans(fds, geom, offsets, nbytes, after, y0, y1, x0, x1, spans, rel, buf, pad):
    """Plan and read (``fds[f]``: file f's descriptor) the tiles box [y0:y1, x0:x1] touches in
    every file into ``buf``, leaving ``pad`` spare bytes after them. Returns (status, file,
    detail, bytes): status 0 (``rel`` as :func:`plan_reads` sets it), ERR_BUFFER (``buf`` needs
    ``detail`` bytes) or ERR_SHORT_READ (``detail`` = file offset of the span cut short)."""
    n, total = plan_reads(geom, offsets, nbytes, after, y0, y1, x0, x1, spans, rel)
    if total + pad > buf.shape[0]:
        return ERR_BUFFER, -1, total + pad, 0
    pos = 0
    for j in range(n):
        f, a, ln = spans[j, 0], spans[j, 1], spans[j, 2]
        if _pread_all(fds[f], buf, pos, ln, a) != ln:
            return ERR_SHORT_READ, f, a, pos
        pos += ln
    return 0, -1, -1, total
