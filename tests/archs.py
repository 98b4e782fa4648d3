"""Tiny random causal LMs of ten architectures, and plain Hugging Face reference computations.

Used by `tests/test_architectures.py`. `build(name, path)` writes a 2-layer model of one
architecture (weights re-drawn as normal(0, 0.3), so attention is far from uniform) and a
128-token byte-level BPE tokenizer into `path`; `load_hf(path)` loads it back as a plain eager
transformers model. Everything else here computes, on that plain model and never through the
bridge, what an interp analysis should return: logits with layers' attention masks removed,
logits with head slices replaced at the attention output projection's input, per-head direct
logit shares, and so on.

The tokenizer is byte-level BPE because transformers 5 builds a `Qwen2Tokenizer` (byte-level
BPE with Qwen's split regex) for every qwen2 checkpoint whatever its `tokenizer.json` says;
a word-level vocabulary (t0..t127) mis-tokenises there. Words here are letters, so every
architecture's tokenizer splits text the same way: "b ab ca" -> ["b", " ab", " ca"].
"""

from __future__ import annotations

import string
from contextlib import contextmanager
from pathlib import Path

import torch

ARCHS = ("gpt2", "llama", "qwen2", "mistral", "gemma2", "gemma3", "neox", "phi", "gptj", "opt")
VOCAB = 128
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<s>", "</s>")
_FIRST, _SECOND = "abcdefghi", "abcdefgh"  # two-letter words: 9 x 8 = 72


def configs(vocab: int = VOCAB) -> dict:
    """One small config per architecture (2 layers, d_model 32, 4 heads, context 64)."""
    import transformers as T

    ids = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    return {
        "gpt2": T.GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, **ids),
        "llama": T.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                               tie_word_embeddings=True, **ids),
        "qwen2": T.Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, **ids),
        "mistral": T.MistralConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   sliding_window=4, **ids),
        "gemma2": T.Gemma2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                 max_position_embeddings=64, sliding_window=4, **ids),
        "gemma3": T.Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=1, head_dim=8,
                                     max_position_embeddings=64, sliding_window=4,
                                     layer_types=["sliding_attention", "full_attention"], **ids),
        "neox": T.GPTNeoXConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, max_position_embeddings=64, rotary_pct=0.5, **ids),
        "phi": T.PhiConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=64, partial_rotary_factor=0.5, **ids),
        "gptj": T.GPTJConfig(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4, **ids),
        "opt": T.OPTConfig(vocab_size=vocab, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                           max_position_embeddings=64, word_embed_proj_dim=32, **ids),
    }


# ---------------------------------------------------------------- building

def vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """128 byte-level tokens and their merges: 3 specials, "Ġ", the 26 letters, the 26 words
    " a".." z" and 72 two-letter words " aa".." ih" (Ġ is byte-level BPE's space)."""
    letters = string.ascii_lowercase
    tokens = list(SPECIALS) + ["Ġ"] + list(letters) + ["Ġ" + c for c in letters]
    merges = [("Ġ", c) for c in letters]
    for a in _FIRST:
        for b in _SECOND:
            tokens.append("Ġ" + a + b)
            merges.append(("Ġ" + a, b))
    assert len(tokens) == VOCAB
    return {t: i for i, t in enumerate(tokens)}, merges


def tokenizer():
    """The byte-level BPE tokenizer every test model uses (pad/unk <pad>, bos <s>, eos </s>)."""
    import transformers as T
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    vocab, merges = vocabulary()
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=SPECIALS[PAD]))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    special = {k: AddedToken(SPECIALS[i], special=True, normalized=False)
               for k, i in (("pad_token", PAD), ("unk_token", PAD), ("bos_token", BOS), ("eos_token", EOS))}
    return T.PreTrainedTokenizerFast(tokenizer_object=tk, **special)


def build(name: str, path: str | Path, seed: int = 0) -> Path:
    """Write a random `name` model (weights normal(0, 0.3)) and the tokenizer into `path`."""
    import transformers as T

    path = Path(path)
    cfg = configs()[name]
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.save_pretrained(path)
    tokenizer().save_pretrained(path)
    return path


def bridged(name: str, path: str | Path):
    """`build` a random `name` model into `path` and load it with `interp.load` (transformers
    quiet meanwhile)."""
    import transformers

    import interp

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return interp.load(str(build(name, path)))
    finally:
        transformers.logging.set_verbosity(verbosity)


def load_hf(path: str | Path):
    """The plain transformers model in `path`, eager attention, eval mode."""
    import transformers as T

    return T.AutoModelForCausalLM.from_pretrained(str(path), attn_implementation="eager").eval()


def load_tokenizer(path: str | Path):
    import transformers as T

    return T.AutoTokenizer.from_pretrained(str(path))


def encode(tok, text: str, bos: bool) -> torch.Tensor:
    """[1 pos] ids of `text`, with BOS first when `bos`."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return torch.tensor([([BOS] if bos else []) + list(ids)])


# ---------------------------------------------------------------- finding modules

def _first_path(hf, paths, what: str):
    """The first dotted attribute path of `paths` that exists on `hf`."""
    for path in paths:
        obj = hf
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise AssertionError(f"no {what} found in {type(hf).__name__}")


def decoder_layers(hf):
    """The list of decoder layers of any of the ten architectures."""
    return _first_path(hf, ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"),
                       "decoder layers")


def attention(hf, layer: int):
    """Layer `layer`'s self-attention module."""
    block = decoder_layers(hf)[layer]
    for name in ("self_attn", "attn", "attention"):
        if hasattr(block, name):
            return getattr(block, name)
    raise AssertionError(f"no attention module in {type(block).__name__}")


def out_proj(hf, layer: int):
    """The attention output projection (its input is the heads' outputs z, concatenated)."""
    attn = attention(hf, layer)
    for name in ("o_proj", "c_proj", "dense", "out_proj"):
        if hasattr(attn, name):
            return getattr(attn, name)
    raise AssertionError(f"no output projection in {type(attn).__name__}")


def final_norm(hf):
    return _first_path(hf, ("model.norm", "model.final_layernorm", "model.decoder.final_layer_norm",
                            "transformer.ln_f", "gpt_neox.final_layer_norm"), "final norm")


def post_attention_norm(hf, layer: int):
    """Gemma's norm on the attention output before the residual add (None elsewhere; Llama's
    `post_attention_layernorm` is the pre-MLP norm, told apart by Gemma's `pre_feedforward_layernorm`)."""
    block = decoder_layers(hf)[layer]
    return block.post_attention_layernorm if hasattr(block, "pre_feedforward_layernorm") else None


def n_heads(hf) -> int:
    return hf.config.num_attention_heads


def d_mlp(hf) -> int:
    """Width of the MLP hidden layer (GPT-2 and GPT-J default to 4 d_model)."""
    c = hf.config
    for key in ("intermediate_size", "ffn_dim", "n_inner"):
        if getattr(c, key, None):
            return getattr(c, key)
    return 4 * c.hidden_size


def d_head(hf, layer: int = 0) -> int:
    proj = out_proj(hf, layer)
    width = proj.in_features if isinstance(proj, torch.nn.Linear) else proj.weight.shape[0]  # Conv1D: [in, out]
    return width // n_heads(hf)


def head_weight(hf, layer: int, head: int) -> torch.Tensor:
    """W_O of one head, [d_head d_model]: its z times this is its write (before any bias)."""
    proj, dh = out_proj(hf, layer), d_head(hf, layer)
    rows = slice(head * dh, (head + 1) * dh)
    return proj.weight[:, rows].T if isinstance(proj, torch.nn.Linear) else proj.weight[rows, :]


# ---------------------------------------------------------------- hooks on the plain model

@contextmanager
def hooks(*handles_or_none):
    """Remove the given hook handles on exit."""
    handles = [h for h in handles_or_none if h is not None]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _zero_mask(module, args, kwargs):
    mask = kwargs.get("attention_mask")
    if mask is not None:
        kwargs["attention_mask"] = torch.zeros_like(mask)
    return args, kwargs


@contextmanager
def unmasked(hf, layers):
    """Inside, the given layers attend to every position: no causal triangle, no sliding window
    (their additive `attention_mask` is replaced by zeros)."""
    handles = [attention(hf, L).register_forward_pre_hook(_zero_mask, with_kwargs=True) for L in layers]
    with hooks(*handles):
        yield


@contextmanager
def replace_heads(hf, values: dict):
    """Inside, head h of layer L has z := fn(z_h) at the output projection's input.

    Args:
        values: {(layer, head): fn(z_h [batch pos d_head]) -> new z_h}.
    """
    by_layer: dict = {}
    for (L, h), fn in values.items():
        by_layer.setdefault(L, []).append((h, fn))

    def make(L):
        dh = d_head(hf, L)

        def pre(module, args):
            x = args[0].clone()
            for h, fn in by_layer[L]:
                x[..., h * dh:(h + 1) * dh] = fn(x[..., h * dh:(h + 1) * dh])
            return (x, *args[1:])
        return pre

    handles = [out_proj(hf, L).register_forward_pre_hook(make(L)) for L in by_layer]
    with hooks(*handles):
        yield


@contextmanager
def record_inputs(modules: dict):
    """Inside, `store[key]` is the first positional input of `modules[key]`'s last call."""
    store: dict = {}

    def make(key):
        def pre(module, args):
            store[key] = args[0].detach().clone()
        return pre

    handles = [m.register_forward_pre_hook(make(k)) for k, m in modules.items()]
    with hooks(*handles):
        yield store


def head_z(hf, ids) -> dict:
    """{layer: z [batch pos head*d_head]} (the output projections' inputs) on `ids`."""
    n = hf.config.num_hidden_layers
    with record_inputs({L: out_proj(hf, L) for L in range(n)}) as store, torch.no_grad():
        hf(ids)
    return dict(store)


# ---------------------------------------------------------------- reference quantities

def logits(hf, ids, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return hf(ids, **kwargs).logits


def log_probs(hf, ids) -> torch.Tensor:
    return logits(hf, ids).log_softmax(-1)


def attentions(hf, ids) -> torch.Tensor:
    """HF's own patterns [layer head query key] (batch 0)."""
    with torch.no_grad():
        out = hf(ids, output_attentions=True)
    return torch.stack([a[0] for a in out.attentions])


def loss(hf, ids) -> float:
    """Mean next-token cross-entropy (nats) over every position of ids [1 pos]."""
    logp = log_probs(hf, ids)[0, :-1]
    return -logp.gather(-1, ids[0, 1:, None]).mean().item()


def logit_diff(hf, ids, target: int, foil: int) -> float:
    """logit(target) - logit(foil) at the last position of the model's output logits."""
    last = logits(hf, ids)[0, -1]
    return (last[target] - last[foil]).item()


def unembed_logits(hf, ids) -> torch.Tensor:
    """Logits as the unembedding writes them [pos d_vocab], before any final softcap (Gemma 2
    caps its output logits with 30 * tanh(x / 30), which is not linear in the residual)."""
    head = hf.get_output_embeddings()
    out = {}
    handle = head.register_forward_hook(lambda m, a, o: out.__setitem__("x", o.detach()))
    with hooks(handle), torch.no_grad():
        hf(ids)
    return out["x"][0]


def _rms_scale(norm, x) -> torch.Tensor:
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps")
    return (x.pow(2).mean(-1) + eps).sqrt()


def _gain(norm) -> torch.Tensor:
    """The per-dimension factor an RMSNorm multiplies by: Gemma's (1 + w), else w."""
    return 1 + norm.weight if type(norm).__name__.startswith("Gemma") else norm.weight


def head_shares(hf, ids, target: int, foil: int) -> torch.Tensor:
    """Direct logit shares [layer head] of every head at the last position, from HF tensors.

    A head's write is z_h @ W_O_h (its slice of the output projection's input times its rows
    of the projection weight; biases belong to the layer). Gemma's post-attention RMSNorm is
    applied with its scale frozen at the value the run used (so it is linear in the write),
    and then the final norm likewise: LayerNorm centres the write and divides by the run's
    sigma, RMSNorm divides by the run's rms; the result is dotted with the norm's gain times
    W_U[target] - W_U[foil]. The shares plus every other write's share sum to the logit
    difference before any softcap (`unembed_logits`).
    """
    n_layers, H = hf.config.num_hidden_layers, n_heads(hf)
    norm = final_norm(hf)
    posts = {L: post_attention_norm(hf, L) for L in range(n_layers)}
    modules = {("z", L): out_proj(hf, L) for L in range(n_layers)}
    modules.update({("post", L): m for L, m in posts.items() if m is not None})
    modules["final"] = norm
    with record_inputs(modules) as store, torch.no_grad():
        hf(ids)
    W_U = hf.get_output_embeddings().weight
    with torch.no_grad():
        x = store["final"][0, -1]
        d = W_U[target] - W_U[foil]
        if isinstance(norm, torch.nn.LayerNorm):
            v = norm.weight * d
            v, scale = v - v.mean(), (x.var(unbiased=False) + norm.eps).sqrt()
        else:
            v, scale = _gain(norm) * d, _rms_scale(norm, x)
        out = torch.zeros(n_layers, H)
        dh = d_head(hf)
        for L in range(n_layers):
            z = store["z", L][0, -1]
            for h in range(H):
                write = z[h * dh:(h + 1) * dh] @ head_weight(hf, L, h)
                if posts[L] is not None:
                    write = write * _gain(posts[L]) / _rms_scale(posts[L], store["post", L][0, -1])
                out[L, h] = (write @ v) / scale
    return out


def greedy(hf, ids, max_new_tokens: int) -> list[int]:
    """Greedy continuation (argmax of a full rerun at each step), stopping after EOS."""
    new = []
    for _ in range(max_new_tokens):
        nxt = int(logits(hf, ids)[0, -1].argmax())
        if nxt == EOS:
            break
        new.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return new
