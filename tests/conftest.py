"""Shared fixtures: models are loaded once per session; sockets are blocked for every test.

The offline guarantee is enforced here: any test that tries to open a network connection fails,
except tests marked `@pytest.mark.network` (the hub path's offline error).
"""

from __future__ import annotations

import hashlib
import socket

import pytest


class NetworkBlocked(OSError):
    """Raised instead of connecting; an OSError, like a real unreachable network."""


@pytest.fixture(autouse=True)
def _no_network(request, monkeypatch):
    if request.node.get_closest_marker("network"):
        yield
        return

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"test tried to open a network connection: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


@pytest.fixture(scope="session")
def zoo4l():
    """The default zoo model (4 layers); do not modify it in a test."""
    import interp

    return interp.load("zoo-4l")


@pytest.fixture(scope="session")
def zoo2l():
    import interp

    return interp.load("zoo-2l")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on the shared 2-core machine a 14-token SmolLM2 forward took 2-7 s with two threads (spinning
    workers competing with the other process) and 0.2-0.4 s with one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smollm2():
    """The default model, SmolLM2-135M-Instruct (GGUF Q4_1, dequantized); do not modify it.

    The converted copy lives in the user cache ($INTERP_CACHE or ~/.cache/interp): the first
    session on a machine converts it (~30-70 s), later ones boot from the cache."""
    import interp

    return interp.load("smollm2-135m", progress=False)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A random-weight GPT-2 directory (2 layers, d_model 32) with the zoo tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.zoo.train import build_tokenizer

    path = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    tok = build_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    import interp

    return interp.load(str(tiny_dir))


def param_hash(model) -> str:
    """SHA-256 over every parameter and buffer's bytes: equal iff the model is unchanged."""
    h = hashlib.sha256()
    for name, t in sorted(list(model.state_dict().items())):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(__import__("torch").uint8).numpy().tobytes())
    return h.hexdigest()


def hook_count(model) -> int:
    """Number of forward/backward hooks attached anywhere in the model (0 after any analysis)."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
    return n


@pytest.fixture
def unchanged():
    """Use as `with unchanged(model): ...` to assert no parameter changed and no hook remains."""
    from contextlib import contextmanager

    @contextmanager
    def check(model):
        _warm(model)
        before, hooks = param_hash(model), hook_count(model)
        try:
            yield
        finally:
            assert param_hash(model) == before, "model parameters changed"
            assert hook_count(model) == hooks, "hooks left on the model"

    return check


def _warm(model) -> None:
    """One cached run: the bridge adds its own permanent internal hooks (12 on zoo-4l) the first
    time `run_with_cache` is used, which are not a leak and must not count against the body."""
    import torch

    with torch.no_grad():
        model.run_with_cache(model.to_tokens("a"), names_filter=lambda name: False)
