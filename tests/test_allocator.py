"""interp.tune_allocator: after it, a large block comes from the heap and stays there when freed
(glibc's default maps and unmaps it); it does nothing where the C library is not glibc."""

import json
import subprocess
import sys

import pytest

from interp import allocator

PROBE = """
import ctypes, json, sys, torch
from interp import allocator
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
tuned = allocator.tune() if sys.argv[1] == "tuned" else None
before = libc.mallinfo2(); x = torch.ones(4 << 20); during = libc.mallinfo2(); del x; after = libc.mallinfo2()
print(json.dumps({"tuned": tuned, "mapped": during.hblkhd - before.hblkhd, "heap_kept": after.arena - before.arena}))
"""


def _probe(setting: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(allocator.glibc() is None, reason="mallopt and mallinfo2 are glibc's")
def test_a_freed_16_mib_block_stays_in_the_heap_only_when_tuned():
    default, tuned = _probe("default"), _probe("tuned")
    assert default["mapped"] >= 16 << 20 and default["heap_kept"] < 16 << 20  # mapped, then handed back
    assert tuned["tuned"] is True and tuned["mapped"] == 0 and tuned["heap_kept"] >= 16 << 20


def test_tune_without_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    assert allocator.tune() is False


AUTO = """
import interp
from interp import allocator
interp.capture(interp.load("zoo-2l"), ["The king"], names="blocks.0.hook_resid_post")
print(allocator.tuned())
"""


@pytest.mark.skipif(allocator.glibc() is None, reason="mallopt is glibc's")
@pytest.mark.parametrize("env, expected", [(None, "True"), ("0", "False")])
def test_the_engine_tunes_on_first_use_unless_opted_out(env, expected):
    import os

    environ = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    if env is not None:
        environ[allocator.ENV] = env
    out = subprocess.run([sys.executable, "-c", AUTO], capture_output=True, text=True, check=True, env=environ)
    assert out.stdout.strip().splitlines()[-1] == expected
