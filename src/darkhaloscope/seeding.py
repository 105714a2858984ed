"""numpy's ``SeedSequence`` state for one task's stream, without building a SeedSequence.

``ids.task_rng`` makes a fresh generator for every (task, stream): 3-4 per painted row. numpy's
SeedSequence does its entropy coercion, pool mixing and ``generate_state`` through Python-level
paths (an ``np.errstate`` per call, dtype checks, three array conversions), ~50 us per
generator inside a row's work (cold caches), more than the draws themselves. This module computes
the same pool and words with integer arithmetic: the algorithm of numpy/random/bit_generator.pyx
(numpy 2.x, ``SeedSequence.mix_entropy`` and ``generate_state``, after M. E. O'Neill's
``seed_seq_fe``; the constants below are its), pool size 4, no spawn key. The resulting
bit generator is numpy's ``PCG64(SeedSequence(entropy))`` state for state, which
tests/unit/test_ids.py checks against numpy itself on zero, one-, two-word and random entropy.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.random.bit_generator import ISeedSequence

_POOL_SIZE = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT, _MASK32 = 16, 0xFFFFFFFF


def entropy_words(values: tuple[int, ...]) -> list[int]:
    """The uint32 words SeedSequence makes of a list of non-negative ints: each one little-endian
    in 32-bit words, 0 -> one zero word (bit_generator.pyx ``_coerce_to_uint32_array``)."""
    words = []
    for value in values:
        v = int(value)
        if v < 0:
            raise ValueError(f"random stream entropy must be non-negative integers, got {value}")
        words.append(v & _MASK32)
        v >>= 32
        while v > 0:
            words.append(v & _MASK32)
            v >>= 32
    return words


@numba.njit(cache=True, nogil=True)
def _hashmix(value, h):
    """(hashed value, next hash constant) of ``hashmix`` (uint64 holding uint32 values)."""
    mask, shift = np.uint64(_MASK32), np.uint64(_XSHIFT)
    value = value ^ h
    h = (h * np.uint64(_MULT_A)) & mask
    value = (value * h) & mask
    return value ^ (value >> shift), h


@numba.njit(cache=True, nogil=True)
def _mix(x, y):
    mask, shift = np.uint64(_MASK32), np.uint64(_XSHIFT)
    r = (np.uint64(_MIX_MULT_L) * x - np.uint64(_MIX_MULT_R) * y) & mask
    return r ^ (r >> shift)


@numba.njit(cache=True, nogil=True)
def state_words(words, n32):
    """``SeedSequence(words).generate_state(n32, uint32)``: the pool of ``mix_entropy`` (4 words),
    then the output hash; words: uint32 entropy words; returns uint32 [n32]."""
    mask, shift = np.uint64(_MASK32), np.uint64(_XSHIFT)
    h = np.uint64(_INIT_A)
    pool = np.zeros(_POOL_SIZE, np.uint64)
    n = words.shape[0]
    for i in range(_POOL_SIZE):
        pool[i], h = _hashmix(np.uint64(words[i]) if i < n else np.uint64(0), h)
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                v, h = _hashmix(pool[i_src], h)
                pool[i_dst] = _mix(pool[i_dst], v)
    for i_src in range(_POOL_SIZE, n):
        for i_dst in range(_POOL_SIZE):
            v, h = _hashmix(np.uint64(words[i_src]), h)
            pool[i_dst] = _mix(pool[i_dst], v)
    out = np.empty(n32, np.uint32)
    hb = np.uint64(_INIT_B)
    for i in range(n32):
        v = pool[i % _POOL_SIZE] ^ hb
        hb = (hb * np.uint64(_MULT_B)) & mask
        v = (v * hb) & mask
        out[i] = np.uint32(v ^ (v >> shift))
    return out


class TaskSeed(ISeedSequence):
    """A seed sequence (numpy's ``ISeedSequence``) equal to ``SeedSequence(values)`` for what a
    bit generator asks of it: ``generate_state``. Not spawnable."""

    __slots__ = ("words",)

    def __init__(self, values: tuple[int, ...]):
        self.words = np.array(entropy_words(values), np.uint32)

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        """``SeedSequence.generate_state``: n_words uint32, or uint64 (pairs of uint32, low first)."""
        if dtype is np.uint64 or np.dtype(dtype) == np.uint64:
            words = state_words(self.words, 2 * int(n_words))  # little-endian pairs, as numpy's view
            return words.astype("<u4", copy=False).view("<u8").astype(np.uint64, copy=False)
        if np.dtype(dtype) != np.uint32:
            raise ValueError("only support uint32 or uint64")
        return state_words(self.words, int(n_words))
