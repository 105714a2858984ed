"""Task identity: stable ids, hash splits, roles and their labels, per-task random streams.

Everything here is a pure function of an object's DR10 identity and the config salts, so a
task's split, role and random draws never change with partitioning or cluster size.

Bit layout of ``task_id`` (int64, always positive)::

    task_id = release << 41 | brickid << 21 | objid
    release < 2**14 (DR10 = 10000), brickid < 2**20 (DR10 max 662174), objid < 2**21
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from .config import HASHED_ROLES, ROLE_LABELS, SPLITS
from .errors import CatalogError

RELEASE_BITS, BRICKID_BITS, OBJID_BITS = 14, 20, 21
_OBJ_SHIFT = 0
_BRICK_SHIFT = OBJID_BITS
_RELEASE_SHIFT = OBJID_BITS + BRICKID_BITS


def make_task_id(release: int, brickid: int, objid: int) -> int:
    """Stable int64 ``task_id`` from DR10 ``release``, ``brickid`` and ``objid``."""
    for name, value, bits in (("release", release, RELEASE_BITS), ("brickid", brickid, BRICKID_BITS), ("objid", objid, OBJID_BITS)):
        if not 0 <= int(value) < 2**bits:
            raise CatalogError(f"{name}={value} does not fit the task_id layout (0 <= {name} < 2**{bits})", field=name)
    return (int(release) << _RELEASE_SHIFT) | (int(brickid) << _BRICK_SHIFT) | int(objid)


def make_task_ids(release: np.ndarray, brickid: np.ndarray, objid: np.ndarray) -> np.ndarray:
    """Vectorised :func:`make_task_id` (int64 array)."""
    release = np.asarray(release, dtype=np.int64)
    brickid = np.asarray(brickid, dtype=np.int64)
    objid = np.asarray(objid, dtype=np.int64)
    for name, arr, bits in (("release", release, RELEASE_BITS), ("brickid", brickid, BRICKID_BITS), ("objid", objid, OBJID_BITS)):
        bad = (arr < 0) | (arr >= 2**bits)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CatalogError(f"{name}={int(arr[i])} at row {i} does not fit the task_id layout", field=name, row=i)
    return (release << _RELEASE_SHIFT) | (brickid << _BRICK_SHIFT) | objid


def split_task_id(task_id: int) -> tuple[int, int, int]:
    """Inverse of :func:`make_task_id`: (release, brickid, objid)."""
    task_id = int(task_id)
    return (
        task_id >> _RELEASE_SHIFT,
        (task_id >> _BRICK_SHIFT) & (2**BRICKID_BITS - 1),
        task_id & (2**OBJID_BITS - 1),
    )


def make_galaxy_id(release: int, brickid: int, objid: int) -> str:
    """The galaxy's string id ``"<release>_<brickid>_<objid>"``."""
    return f"{int(release)}_{int(brickid)}_{int(objid)}"


def hash_unit(key: str | int, salt: str) -> float:
    """Uniform number in [0, 1) from a salted blake2b hash of ``key`` (53 bits of the digest)."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return (int.from_bytes(digest, "little") >> 11) / float(2**53)


def split_of_unit(u: float, fractions: Mapping[str, float]) -> str:
    """The split whose cumulative-fraction interval (train, val, test order) holds ``u`` in [0, 1)."""
    edge = 0.0
    for name in SPLITS:
        edge += fractions[name]
        if u < edge:
            return name
    return SPLITS[-1]


def assign_split(task_id: int, fractions: Mapping[str, float], salt: str) -> str:
    """Split (``train``/``val``/``test``) of a task from the salted hash of its ``task_id``."""
    return split_of_unit(hash_unit(int(task_id), salt), fractions)



def role_of_unit(u: float, mix: Mapping[str, float]) -> str:
    """The role whose cumulative-fraction interval (in :data:`HASHED_ROLES` order) holds ``u``.

    With ``{control: f, injection: 1 - f}`` this is the former two-role rule ``u < f -> control``,
    so configs that only set ``tasks.control_fraction`` keep every task's role.
    """
    edge, last = 0.0, None
    for name in HASHED_ROLES:
        f = float(mix.get(name, 0.0))
        if f > 0:
            edge += f
            last = name
            if u < edge:
                return name
    if last is None:
        raise CatalogError(f"role mix {dict(mix)} gives no role a positive fraction", field="tasks.role_fractions")
    return last


def assign_role(galaxy_id: str, mix: Mapping[str, float] | float, salt: str) -> str:
    """Role of a galaxy from a second salted hash of its ``galaxy_id``.

    mix: {role: fraction} over :data:`HASHED_ROLES` (``TasksConfig.role_mix(split)``), or, as
    before, a control fraction (the rest injections).
    """
    if not isinstance(mix, Mapping):
        mix = {"control": float(mix), "injection": 1.0 - float(mix)}
    return role_of_unit(hash_unit(galaxy_id, salt), mix)


def assign_splits(task_ids: Iterable[int], fractions: Mapping[str, float], salt: str) -> list[str]:
    """:func:`assign_split` over many ids."""
    return [assign_split(t, fractions, salt) for t in task_ids]


def assign_roles(galaxy_ids: Iterable[str], mix: Mapping[str, float] | float, salt: str) -> list[str]:
    """:func:`assign_role` over many ids."""
    return [assign_role(g, mix, salt) for g in galaxy_ids]


def label_of(role: str) -> int:
    """Training label of a role (``config.ROLE_LABELS``: 1 = lens, 0 = not a lens)."""
    try:
        return ROLE_LABELS[role]
    except KeyError:
        raise CatalogError(f"role {role!r} has no label; roles are {list(ROLE_LABELS)}", field="role") from None


def labels_of(roles: Iterable[str]) -> np.ndarray:
    """:func:`label_of` over many roles: int8 array."""
    return np.fromiter((label_of(str(r)) for r in roles), dtype=np.int8)


@lru_cache(maxsize=256)
def _stream_key(stream: str) -> int:
    """32-bit key of a stream name (blake2b; memoised: a handful of names, used on every row)."""
    return int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=4).digest(), "little")


def _entropy_words(values: tuple[int, ...]) -> np.ndarray:
    """The uint32 words ``np.random.SeedSequence`` makes of a list of non-negative ints (each one
    little-endian in 32-bit words, 0 -> one zero word; numpy/random/bit_generator.pyx
    ``_coerce_to_uint32_array``, numpy 2.3): given as this array, SeedSequence takes its copy
    fast path and mixes the very same pool (tests/unit/test_ids.py compares the draws)."""
    words = []
    for value in values:
        v = int(value)
        if v < 0:
            raise ValueError(f"random stream entropy must be non-negative integers, got {value}")
        words.append(v & 0xFFFFFFFF)
        v >>= 32
        while v > 0:
            words.append(v & 0xFFFFFFFF)
            v >>= 32
    return np.array(words, np.uint32)


def task_rng(seed: int, task_id: int, stream: str = "inject") -> np.random.Generator:
    """The random generator of one task: seeded by (global seed, task_id, named stream), i.e.
    ``SeedSequence([seed, task_id, blake2b_32(stream)])`` (its entropy passed as uint32 words).

    Named streams (``"lens"``, ``"source"``, ``"noise"`` ...) are independent, so adding a draw
    to one stage never changes the draws of another.
    """
    words = _entropy_words((seed, task_id, _stream_key(stream)))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))
