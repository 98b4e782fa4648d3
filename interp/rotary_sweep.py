"""Downstream-only head sweeps on Llama, Qwen2 and Mistral, on `interp.rotary_engine`'s forward.

The same algorithm as the GPT-2 fast sweep (`interp.sweep.fast_sweep`): one clean forward keeps
every layer's hook_z and resid_mid; for the heads of layer l, each head's change
`(z_new - z_clean) @ W_O[l, h]` is added to the clean resid_mid (the other heads' clean outputs
are reused, so layer l's attention is never recomputed), and only layer l's MLP and layers
l+1..L-1 are run, one copy per head stacked along the batch. A last-position metric runs the
final layer's queries, attention output and MLP at the last position only (its keys and values
still at every position), and a logit difference is one dot product with
W_U[target] - W_U[foil]. When the replacement starts at position P > 0 and the metric reads
the last position, positions < P are never recomputed: their clean rotated keys and values are
reused.

Copies run in waves sorted by layer (as in `interp.blocks`): a wave's layer-l copies join the
running ones at layer l's MLP, so later layers multiply larger stacked batches.

`block_sweep` (the model's own decoder blocks) serves every other architecture and models with
hooks attached; on smollm2-135m this path is faster (`make bench`). Every call replays all
layers unchanged and checks that clean metric against one bridge forward of the first prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interp import rotary_engine as re
from interp.errors import InterpError
from interp.progress import bar

_CHUNK_BYTES = 12 * 2**20  # bound on one wave's MLP hidden layer: about 30 copies on smollm2-135m (batch 4 x 16), the
# fastest of 9, 18, 30, 45 and 90 copies per wave measured there (larger waves leave the caches)


def rotary_sweep(model, tokens: Tensor, replacement: Tensor, metric, lengths=None, positions=None,
                 layers: Sequence[int] | None = None, chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """Clean metric [batch] and swept metric [layer head batch], as `naive_sweep` returns them.

    Args:
        chunk: (layer, head) copies per wave (default: as many as fit in 12 MiB of MLP activations).
    """
    from interp.engine import architecture, hooked
    from interp.sweep import _check_replacement, _first_changed, _last, _self_check, position_mask

    if not re.supports(model):
        raise InterpError(f"the rotary sweep supports Llama, Qwen2 and Mistral models, not {architecture(model)}; "
                          "use interp.sweep.fast_sweep, which picks the path for each model")
    if hooked(model):
        raise InterpError("the model has hooks attached, which the rotary sweep would not run; remove them "
                          "or use interp.sweep.fast_sweep (which replays the model's own blocks then)")
    _check_replacement(model, tokens, replacement)
    p = re.parts(model)
    B, S = tokens.shape
    L, H = len(p.blocks), model.cfg.n_heads
    last, mask = _last(tokens, lengths), position_mask(positions, S, tokens.device)
    P = _first_changed(mask, last, metric)  # positions < P are the clean run's in every copy
    names = [f"blocks.{l}.{n}" for n in ("attn.hook_z", "hook_resid_mid") for l in range(L)]
    names += [f"blocks.{l}.attn.hook_{c}" for l in range(1, L) for c in ("rot_k", "v")] if P else []
    names += ["rotary_emb.hook_cos", "rotary_emb.hook_sin"]  # every position's, for the replay
    with torch.no_grad():
        acts = re.run(model, tokens, names)[0]
        cos, sin = acts["rotary_emb.hook_cos"], acts["rotary_emb.hook_sin"]
        prefix = [None] + [tuple(acts[f"blocks.{l}.attn.hook_{c}"][:, :P].transpose(1, 2) for c in ("rot_k", "v"))
                           for l in range(1, L)] if P else None
        run = _Replay(p, metric, tokens, last, P, cos, sin, prefix)
        mid = lambda l: acts[f"blocks.{l}.hook_resid_mid"][:, P:]  # noqa: E731
        clean = run([(0, mid(0))])  # every layer replayed unchanged: checked against the bridge below
        _self_check(model, tokens, clean, metric, last)
        pairs = [(l, h) for l in sorted(range(L) if layers is None else layers) for h in range(H)]
        chunk = chunk or max(1, _CHUNK_BYTES // (B * (S - P) * model.cfg.d_mlp * 4))
        out = torch.full((L, H, B), float("nan"))
        with bar(len(pairs), "head sweep") as progress:
            for i in range(0, len(pairs), chunk):
                wave = pairs[i:i + chunk]
                entering = []
                for l in dict.fromkeys(l for l, _ in wave):
                    heads = [h for layer, h in wave if layer == l]
                    diff = torch.where(mask[None, :, None, None], replacement[l].to(mid(l).dtype)
                                       - acts[f"blocks.{l}.attn.hook_z"], 0)[:, P:]
                    delta = re.head_outputs(p.blocks[l], diff)[heads]  # [head batch pos d_model]
                    entering.append((l, (mid(l)[None] + delta).reshape(-1, S - P, mid(l).shape[-1])))
                result = run(entering)
                for (l, h), row in zip(wave, result.reshape(len(wave), B).cpu()):
                    out[l, h] = row
                progress.update(len(wave))
    return clean, out


class _Replay:
    """Runs stacked copies from their layer's resid_mid to the metric (see the module docstring)."""

    def __init__(self, p, metric, tokens: Tensor, last: Tensor, start: int, cos: Tensor, sin: Tensor, prefix):
        self.p, self.metric, self.tokens, self.last, self.start = p, metric, tokens, last - start, start
        self.cos, self.sin, self.prefix = cos, sin, prefix

    def __call__(self, entering: list[tuple[int, Tensor]]) -> Tensor:
        """Metric [copies * batch] for copies entering at (layer, resid_mid [copies * batch, pos, d_model]),
        in layer order; the result lists them in that order."""
        p, L, B = self.p, len(self.p.blocks), len(self.last)
        joins = dict(entering)
        x = None
        for j in range(min(joins), L):
            final = self.metric.last_only and j == L - 1
            n = 0 if x is None else len(x) // B
            if x is not None:
                past = None if self.prefix is None else tuple(t.repeat(n, 1, 1, 1) for t in self.prefix[j])
                x = re.attend(p.blocks[j], x, self.cos, self.sin, self.start,
                              self.last.repeat(n) if final else None, past)
            if j in joins:
                new = joins[j]
                if final:
                    new = new[torch.arange(len(new), device=new.device), self.last.repeat(len(new) // B)]
                x = new if x is None else torch.cat([x, new])
            x = re.feed_forward(p.blocks[j], x)
        return self._metric(x)

    def _metric(self, x: Tensor) -> Tensor:
        metric, n = self.metric, len(x) // len(self.last)
        prompt = torch.arange(len(self.last), device=x.device).repeat(n)
        W_U, b_U = self.p.unembed.weight, self.p.unembed.bias
        if metric.last_only:
            h = re.final_norm(self.p, x)
            if metric.kind == "logit_diff":
                t, f = metric.target[prompt], metric.foil[prompt]
                diff = (h * (W_U[t] - W_U[f])).sum(-1)
                return diff if b_U is None else diff + b_U[t] - b_U[f]
            return metric.at_last(torch.nn.functional.linear(h, W_U, b_U), prompt)
        logits = torch.nn.functional.linear(re.final_norm(self.p, x), W_U, b_U)
        return metric(logits, self.tokens.repeat(n, 1), (self.last + self.start).repeat(n))
