"""Temperature, entropy and seeded sampling of a model's next-token distribution.

At temperature T the next-token distribution is softmax(logits / T) (Ackley, Hinton & Sejnowski,
1985; the "temperature" of Hinton et al., 2015, "Distilling the Knowledge in a Neural Network"):
T = 1 is the model's own distribution, T -> 0 concentrates on the argmax (T = 0 is exactly greedy:
a one-hot on the argmax), large T flattens it. Its entropy is non-decreasing in T.

Sampling draws continuations with a `torch.Generator` seeded explicitly: the same seed and inputs
give the same text. Every causal model steps through a key/value cache (GPT-2-style ones through
`interp.engine.Decoder`, the rest through the bridge, `interp.kv`). Generation stops after `max_new_tokens`, at the end-of-text token, or when the
sequence fills the model's context, whichever comes first.

Example:
    >>> import interp
    >>> from interp.sampling import entropy_by_temperature, sample, top_tokens
    >>> model = interp.load("zoo-4l")
    >>> prompt = "When Mary and John went to the store, John gave a drink to"
    >>> top_tokens(model, prompt, temperature=1.0, k=1)["token"].tolist()
    [' Mary']
    >>> entropy_by_temperature(model, prompt, [0, 1])["entropy_nats"].tolist()[0]
    0.0
    >>> sample(model, prompt, n=2, seed=0)["text"].equals(sample(model, prompt, n=2, seed=0)["text"])
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from interp.errors import InterpError


def check_temperature(temperature: float) -> float:
    """`temperature` as a float >= 0.

    Raises:
        InterpError: negative, NaN, infinite or not a number.
    """
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InterpError(f"temperature {temperature!r} is not a number: give T >= 0, e.g. 1.0") from None
    if isinstance(temperature, bool) or not math.isfinite(t) or t < 0:
        raise InterpError(f"temperature {temperature!r} is invalid: give a finite T >= 0 (0 = greedy, 1 = the model)")
    return t


def temperature_log_probs(logits, temperature: float):
    """Log-probabilities `Float[Tensor, "... d_vocab"]` of softmax(logits / T), in float64.

    T = 0 gives the greedy one-hot (log 1 = 0 at the first argmax, -inf elsewhere).
    """
    import torch

    t = check_temperature(temperature)
    logits = logits.detach().double()
    if t == 0:
        hot = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).bool()
        return torch.zeros_like(logits).masked_fill(~hot, float("-inf"))
    shifted = logits - logits.max(-1, keepdim=True).values  # never overflows, even for tiny T
    return torch.log_softmax(shifted / t, dim=-1)


def temperature_probs(logits, temperature: float):
    """softmax(logits / T) over the last axis (float64); T = 0 is the greedy one-hot."""
    return temperature_log_probs(logits, temperature).exp()


def entropy(log_probs):
    """Entropy in nats over the last axis, with 0 log 0 = 0."""
    import torch

    p = log_probs.exp()
    return (-torch.where(p > 0, p * log_probs, torch.zeros_like(p)).sum(-1)).clamp_min(0.0) + 0.0  # no -0.0


def next_token_logits(model, prompt: str, allow_untrained: bool = False):
    """Logits `Float[Tensor, "d_vocab"]` for the token after `prompt` (BOS prepended as usual).

    Raises:
        InterpError: empty or too-long prompt; untrained unembedding (unless allowed).
    """
    import torch

    from interp.activations import to_tokens
    from interp.models import require_trained

    require_trained(model, "sampling", allow_untrained)
    require_causal(model)
    tokens, _ = to_tokens(model, prompt)
    with torch.no_grad():
        return model(tokens)[0, -1]


def require_causal(model) -> None:
    """Refuse a bidirectional encoder: its logits at a position predict that (masked) token, not
    the next one, so there is no next-token distribution to sample from."""
    from interp.arch import facts
    from interp.errors import model_name

    if not facts(model).causal:
        raise InterpError(f"sampling needs a left-to-right (causal) language model, but {model_name(model)} is a "
                          "bidirectional encoder; use a decoder such as smollm2-135m or zoo-4l")


def _token_text(model, i: int) -> str:
    return model.tokenizer.decode([int(i)])


def top_tokens(model, prompt: str, temperature: float = 1.0, k: int = 10,
               allow_untrained: bool = False) -> "pandas.DataFrame":
    """The k most likely next tokens at `temperature`.

    Returns:
        DataFrame with columns rank, token, token_id, prob, logprob.
    """
    import pandas as pd

    check_temperature(temperature)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InterpError(f"k must be a positive integer, got {k!r}: e.g. k=10")
    logp = temperature_log_probs(next_token_logits(model, prompt, allow_untrained), temperature)
    values, ids = logp.topk(min(k, logp.shape[-1]))
    return pd.DataFrame({"rank": range(1, len(ids) + 1), "token": [_token_text(model, i) for i in ids.tolist()],
                         "token_id": ids.tolist(), "prob": values.exp().tolist(), "logprob": values.tolist()})


DEFAULT_TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)


def entropy_by_temperature(model, prompt: str, temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                           allow_untrained: bool = False) -> "pandas.DataFrame":
    """Entropy of the next-token distribution at each temperature (one forward pass).

    Returns:
        DataFrame with columns temperature, entropy_nats, top_token, top_prob.
    """
    import pandas as pd

    temps = [check_temperature(t) for t in temperatures]
    if not temps:
        raise InterpError("temperatures is empty: give at least one, e.g. [0.5, 1.0, 2.0]")
    logits = next_token_logits(model, prompt, allow_untrained)
    rows = []
    for t in temps:
        logp = temperature_log_probs(logits, t)
        top = int(logp.argmax())
        rows.append({"temperature": t, "entropy_nats": entropy(logp).item(),
                     "top_token": _token_text(model, top), "top_prob": logp[top].exp().item()})
    return pd.DataFrame(rows)


def check_counts(n: int, max_new_tokens: int) -> None:
    """Raise unless n >= 1 and max_new_tokens >= 0 are integers."""
    for name, v, low in (("n", n, 1), ("max_new_tokens", max_new_tokens, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise InterpError(f"{name} must be an integer >= {low}, got {v!r}")


def generate(model, tokens, temperature: float, max_new_tokens: int, generator, cache: bool = True):
    """Extend `tokens` [n pos] step by step; returns (tokens, stop reason per row).

    With no hooks attached, each step runs one new token's forward against a key/value cache:
    a GPT-2-style model through `interp.engine.Decoder`, any other through the bridge with
    Hugging Face's own cache (`interp.kv.CachedStepper`). A model with hooks reruns the whole
    sequence through the bridge at each step, so the hooks see every position of every step
    (`cache=False` forces that path; the tokens are the same either way).
    """
    import torch

    n, eos, n_ctx = tokens.shape[0], model.tokenizer.eos_token_id, model.cfg.n_ctx
    step = _stepper(model, n, cache)
    done = torch.zeros(n, dtype=torch.bool)
    reason = ["max_new_tokens"] * n
    for _ in range(max_new_tokens):
        if tokens.shape[1] >= n_ctx:
            return tokens, [r if d else "context" for r, d in zip(reason, done.tolist())]
        probs = temperature_probs(step(tokens), temperature)
        nxt = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
        nxt = torch.where(done, torch.full_like(nxt, eos if eos is not None else 0), nxt)
        tokens = torch.cat([tokens, nxt.to(tokens.device)[:, None]], dim=1)
        if eos is not None:
            for i in (~done & (nxt == eos)).nonzero()[:, 0].tolist():
                reason[i] = "eos"
            done |= nxt == eos
        if done.all():
            break
    return tokens, reason


def _stepper(model, n: int, cache: bool = True):
    """fn(tokens [n pos]) -> next-token logits [n d_vocab] at the last position."""
    import torch

    from interp.engine import Decoder, hooked, supports
    from interp.kv import CachedStepper

    if not cache or hooked(model):
        def rerun(tokens):
            with torch.no_grad():
                return model(tokens)[:, -1]
        return rerun
    if not supports(model):
        return CachedStepper(model)
    decoder, fed = Decoder(model, n), [0]

    def cached(tokens):  # feeds only the tokens the decoder has not seen
        logits = decoder(tokens[:, fed[0]:])
        fed[0] = tokens.shape[1]
        return logits
    return cached


def sample(model, prompt: str, n: int = 3, max_new_tokens: int = 20, temperature: float = 1.0,
           seed: int = 0, allow_untrained: bool = False) -> "pandas.DataFrame":
    """`n` seeded continuations of `prompt` sampled at `temperature`.

    Args:
        seed: seeds a CPU `torch.Generator`; same seed, model and inputs -> same samples.

    Returns:
        DataFrame with columns sample, text (the continuation only), n_new_tokens, stop
        ("max_new_tokens", "eos" or "context").
    """
    import pandas as pd
    import torch

    from interp.activations import to_tokens
    from interp.models import require_trained

    check_temperature(temperature)
    check_counts(n, max_new_tokens)
    require_trained(model, "sampling", allow_untrained)
    require_causal(model)
    tokens, _ = to_tokens(model, prompt)
    start = tokens.shape[1]
    g = torch.Generator().manual_seed(int(seed))
    out, stop = generate(model, tokens.repeat(n, 1), temperature, max_new_tokens, g)
    rows = []
    for i in range(n):
        new = out[i, start:].tolist()
        if stop[i] == "eos":
            new = new[:new.index(model.tokenizer.eos_token_id)]
        rows.append({"sample": i, "text": model.tokenizer.decode(new), "n_new_tokens": len(new), "stop": stop[i]})
    return pd.DataFrame(rows)
