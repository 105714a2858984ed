"""Job processes keep the memory they free, instead of handing it back to the OS after each row
or shard and faulting it in again for the next.

A generate worker allocates the same large buffers over and over: a host shard's blob column
(~91 KB per row decompressed, ~25-250 MB per shard), float64 stamp temporaries (~245 KB each)
and a shard's Arrow columns on write. With the allocators' defaults, each time such a buffer
is freed the pages go back to the kernel (pyarrow's mimalloc purges freed pages after 10 ms;
glibc returns blocks above ``M_MMAP_THRESHOLD`` with ``munmap`` and trims the heap top), and
the next row faults them in again, zero-filled page by page. On this project's benchmark
machine (a Firecracker VM) that was 6-12 page faults and 0.08-0.44 ms of system CPU per row of
``generate --hosts``: 5-12 % of the row's CPU while faults were dear, nothing measurable while
they were cheap (benchmarks/bench_stage.py, docs/DATASET.md).

Two settings, both documented by their libraries:

- ``MIMALLOC_PURGE_DELAY=-1`` (mimalloc ``mi_option_purge_delay``, mimalloc docs "Environment
  Options"; pyarrow's default memory pool on Linux is mimalloc): never purge freed pages. mimalloc
  reads its options when the library loads, so this must be in the environment before
  ``pyarrow`` is imported: :func:`set_worker_env` in the CLI and the spark-submit entry points,
  and ``spark.executorEnv`` for the executors' Python workers (:data:`WORKER_ENV`).
- glibc ``mallopt`` (``man 3 mallopt``): ``M_MMAP_THRESHOLD`` 32 MiB (its maximum on 64-bit;
  allocations below it reuse the heap instead of a fresh ``mmap``), ``M_TRIM_THRESHOLD``
  256 MiB and ``M_TOP_PAD`` 64 MiB (the heap top is kept): :func:`retain_freed_memory`, once per
  worker process, at run time (numpy allocates through glibc's ``malloc``).

The cost: a worker's resident memory stays at its peak instead of shrinking between shards
(the bench measures both ways: ``generate_from_hosts_retain_{on,off}_*``). A value the user has
already put in the environment wins (``setdefault``); off glibc (macOS) ``mallopt`` is skipped;
``DARKHALOSCOPE_RETAIN_MEMORY=0`` in the environment turns both off (memory-tight executors).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("darkhaloscope.generate")

# environment a job process (driver, pool worker, Spark Python worker) needs before pyarrow loads
WORKER_ENV: dict[str, str] = {"MIMALLOC_PURGE_DELAY": "-1"}

# glibc mallopt parameters (malloc.h) and the values set
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MALLOPT_SETTINGS: dict[str, tuple[int, int]] = {
    "M_MMAP_THRESHOLD": (_M_MMAP_THRESHOLD, 32 << 20),  # bytes; glibc's maximum on 64-bit
    "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, 256 << 20),  # bytes of free heap top kept
    "M_TOP_PAD": (_M_TOP_PAD, 64 << 20),  # bytes added to each heap extension
}

SWITCH = "DARKHALOSCOPE_RETAIN_MEMORY"  # "0": leave the allocators' defaults

_applied: dict[str, bool] | None = None


def _enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


def set_worker_env() -> dict[str, str]:
    """Put :data:`WORKER_ENV` into ``os.environ`` (values already set are kept); returns what the
    environment now holds for those keys. Call before ``pyarrow`` is imported to take effect in
    this process; child processes started afterwards (Spark's JVM and its Python workers) inherit it."""
    if not _enabled():
        return {key: os.environ[key] for key in WORKER_ENV if key in os.environ}
    return {key: os.environ.setdefault(key, value) for key, value in WORKER_ENV.items()}


def spark_executor_env() -> list[tuple[str, str]]:
    """``spark.executorEnv.<KEY>`` conf pairs that give the executors' Python workers :data:`WORKER_ENV`
    (none when this process has the switch off)."""
    if not _enabled():
        return []
    return [(f"spark.executorEnv.{key}", value) for key, value in WORKER_ENV.items()]


def retain_freed_memory() -> dict[str, bool]:
    """Apply :data:`MALLOPT_SETTINGS` to this process's glibc allocator, once per process
    (later calls return the first result): {setting: accepted}. Empty where the C library is
    not glibc or the switch is off."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = {}
    if not _enabled():
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for name, (param, value) in MALLOPT_SETTINGS.items():
        _applied[name] = bool(mallopt(param, value))
    if not all(_applied.values()):
        log.warning("mallopt refused %s: freed memory goes back to the OS between rows", [k for k, ok in _applied.items() if not ok])
    return _applied
