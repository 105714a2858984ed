"""spark/worker_memory.py: job processes keep the memory they free.

The allocators read their settings once per process (mimalloc when pyarrow loads, glibc's
mallopt for the rest of the process), so each case runs in a fresh interpreter; glibc's effect is
measured as the minor page faults of a re-allocation, which the kernel counts exactly. The two
together are measured on the real job by the bench (``generate_from_hosts_retain_{on,off}_*``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from darkhaloscope.spark import worker_memory as wm

# 48 numpy blocks of 1 MiB (under glibc's mmap threshold: heap), freed, three times: with the
# defaults glibc trims the freed heap top and the next round faults every page in again
_GLIBC_ROUNDS = """
import resource, sys
import numpy as np
from darkhaloscope.spark.worker_memory import retain_freed_memory
applied = retain_freed_memory()
faults = []
for _ in range(3):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [np.ones(1 << 17) for _ in range(48)]
    del blocks
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(sorted(applied.items()), faults[1], faults[2])
"""

PAGES_PER_ROUND = 48 * (1 << 20) // 4096  # what one round touches: 12288 pages of 4 KiB


def _run(script: str, retain: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in wm.WORKER_ENV}
    env[wm.SWITCH] = "1" if retain else "0"
    if retain:
        env.update(wm.WORKER_ENV)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_heap_is_kept_between_rounds_and_not_without():
    on = _run(_GLIBC_ROUNDS, retain=True)
    off = _run(_GLIBC_ROUNDS, retain=False)
    assert "('M_MMAP_THRESHOLD', True)" in " ".join(on) and "('M_TRIM_THRESHOLD', True)" in " ".join(on)
    on_faults, off_faults = [int(v) for v in on[-2:]], [int(v) for v in off[-2:]]
    assert off[0] == "[]"  # switch off: mallopt untouched
    # off: the trimmed heap is faulted in again (most of the 12288 pages); on: a few pages at most
    assert min(off_faults) > PAGES_PER_ROUND // 2, off_faults
    assert max(on_faults) < PAGES_PER_ROUND // 20, on_faults


def test_entry_points_set_the_env_before_pyarrow_loads():
    """mimalloc reads MIMALLOC_PURGE_DELAY once, when pyarrow loads it: the CLI and the
    spark-submit entry points must set it first (the workers inherit it)."""
    env = {k: v for k, v in os.environ.items() if k not in wm.WORKER_ENV and k != wm.SWITCH}
    probe = (
        "import sys, os\n"
        "import darkhaloscope.cli as cli\n"
        "assert 'pyarrow' not in sys.modules, 'the CLI imports pyarrow before it sets the env'\n"
        "import importlib; real = importlib.import_module\n"
        "seen = {}\n"
        "def spy(name, *a):\n"
        "    seen.setdefault('env', os.environ.get('MIMALLOC_PURGE_DELAY'))\n"
        "    return real(name, *a)\n"
        "cli.importlib.import_module = spy\n"
        "try:\n"
        "    cli.main(['generate', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(seen['env'])\n"
    )
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert got[-1] == "-1"
    for job in ("generate", "stage"):
        text = (Path(__file__).resolve().parents[2] / "jobs" / f"{job}.py").read_text()
        assert text.index("set_worker_env()") < text.index("from darkhaloscope.spark import "), job


def test_env_is_set_unless_the_user_set_it_or_turned_it_off(monkeypatch):
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY", raising=False)
    monkeypatch.delenv(wm.SWITCH, raising=False)
    assert wm.set_worker_env() == {"MIMALLOC_PURGE_DELAY": "-1"} and os.environ["MIMALLOC_PURGE_DELAY"] == "-1"
    assert wm.spark_executor_env() == [("spark.executorEnv.MIMALLOC_PURGE_DELAY", "-1")]
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "250")  # the user's value wins
    assert wm.set_worker_env() == {"MIMALLOC_PURGE_DELAY": "250"}
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY")
    monkeypatch.setenv(wm.SWITCH, "0")
    assert wm.set_worker_env() == {} and "MIMALLOC_PURGE_DELAY" not in os.environ
    assert wm.spark_executor_env() == []
