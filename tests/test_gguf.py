"""GGUF: header without weights, dequantize once into the cache, reuse, atomic writes.

The model here is a tiny random Llama written with the gguf package's GGUFWriter (Q8_0 weights,
a byte-level BPE vocabulary), so every test runs in seconds and offline.
"""

import json

import numpy as np
import pytest
import torch

import interp
from interp import gguf
from interp.errors import InterpError

MERGES = ["Ġ t", "h e", "Ġt he", "Ġ c", "a f", "Ġc af"]


def _byte_chars() -> list[str]:
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep} | {b: chr(256 + n) for n, b in enumerate(extra)}
    return [table[b] for b in range(256)]


def write_tiny_gguf(path, seed=0, n_layer=2, d=32, ff=64, n_head=4, n_kv=2):
    """A 2-layer Llama GGUF with Q8_0 matrices and a byte-level BPE tokenizer."""
    import gguf as g

    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>"] + _byte_chars() + [m.replace(" ", "") for m in MERGES]
    tokens += [f"<pad{i}>" for i in range(-len(tokens) % 32)]
    w = g.GGUFWriter(str(path), "llama")
    for add, value in [(w.add_name, "tiny-llama"), (w.add_block_count, n_layer), (w.add_context_length, 64),
                       (w.add_embedding_length, d), (w.add_feed_forward_length, ff), (w.add_head_count, n_head),
                       (w.add_head_count_kv, n_kv), (w.add_rope_freq_base, 10000.0),
                       (w.add_layer_norm_rms_eps, 1e-5), (w.add_vocab_size, len(tokens)),
                       (w.add_rope_dimension_count, d // n_head), (w.add_file_type, g.LlamaFileType.MOSTLY_Q8_0),
                       (w.add_tokenizer_model, "gpt2"), (w.add_tokenizer_pre, "default"), (w.add_token_list, tokens),
                       (w.add_token_types, [g.TokenType.CONTROL] + [g.TokenType.NORMAL] * (len(tokens) - 1)),
                       (w.add_token_merges, MERGES), (w.add_bos_token_id, 0), (w.add_eos_token_id, 0),
                       (w.add_add_bos_token, False)]:
        add(value)

    def tensor(name, *shape):
        a = (rng.standard_normal(shape) * 0.2).astype(np.float32)
        if len(shape) == 1:
            return w.add_tensor(name, a)
        q = g.quants.quantize(a, g.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=g.GGMLQuantizationType.Q8_0)

    tensor("token_embd.weight", len(tokens), d)
    kv = n_kv * d // n_head
    for i in range(n_layer):
        for name, shape in [("attn_norm", (d,)), ("attn_q", (d, d)), ("attn_k", (kv, d)), ("attn_v", (kv, d)),
                            ("attn_output", (d, d)), ("ffn_norm", (d,)), ("ffn_gate", (ff, d)),
                            ("ffn_up", (ff, d)), ("ffn_down", (d, ff))]:
            tensor(f"blk.{i}.{name}.weight", *shape)
    tensor("output_norm.weight", d)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("INTERP_CACHE", str(root))
    return root


def _plain_hf(path):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                              attn_implementation="eager").eval()
    return model, transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def test_header_is_read_without_the_weights(tiny_gguf):
    h = gguf.read_header(tiny_gguf)
    assert h.arch == "llama" and h.get("block_count") == 2 and h.get("embedding_length") == 32
    assert h.quantization == "Q8_0" and h.tensor_types == {"Q8_0": 15, "F32": 5}
    assert h.meta["tokenizer.ggml.tokens"] == {"array_length": 288}
    model, _ = _plain_hf(tiny_gguf)
    assert h.n_params == sum(p.numel() for p in model.parameters())


def test_not_gguf_is_one_line(tmp_path, cache):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(InterpError, match="not a GGUF file") as e:
        interp.load(str(bad))
    assert "\n" not in str(e.value)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (1).to_bytes(8, "little") + (5).to_bytes(8, "little"))
    with pytest.raises(InterpError, match="damaged GGUF header"):
        gguf.read_header(cut)


def test_folder_with_one_gguf_loads_and_two_is_an_error(tiny_gguf, tmp_path, cache):
    import shutil

    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(tiny_gguf, one / "m.gguf")
    model = interp.load(str(one), progress=False)
    assert model.info.name == "m" and model.info.n_layers == 2
    shutil.copy(tiny_gguf, one / "n.gguf")
    with pytest.raises(InterpError, match="holds 2 .gguf files"):
        interp.load(str(one))


def test_gguf_load_matches_transformers_and_records_provenance(tiny_gguf, cache):
    model = interp.load(str(tiny_gguf), progress=False)
    info = model.info
    assert info.source == "local" and info.quantization == "Q8_0" and info.origin == str(tiny_gguf)
    assert info.weights == "GGUF Q8_0 (tiny.gguf), dequantized to float32"
    assert info.to_dict()["weights"] == info.weights and not info.prepends_bos
    ref, ref_tok = _plain_hf(tiny_gguf)
    text = " the café the"
    assert model.to_tokens(text)[0].tolist() == ref_tok(text, add_special_tokens=False).input_ids
    tokens = model.to_tokens(text)
    with torch.no_grad():
        ours, theirs = model(tokens).log_softmax(-1), ref(tokens).logits.log_softmax(-1)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_cache_holds_a_plain_hf_directory(tiny_gguf, cache):
    from safetensors import safe_open

    directory = gguf.convert(tiny_gguf, progress=False)
    assert directory.parent == cache / "gguf" and directory.name == gguf.sha256(tiny_gguf)
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys() and "model.embed_tokens.weight" in f.keys()
    assert gguf.record(directory)["quantization"] == "Q8_0"
    assert sorted(p.name for p in (cache / "gguf").iterdir()) == [directory.name]  # no temp dir left


def test_second_load_reuses_the_cache(tiny_gguf, cache, monkeypatch):
    first = interp.load(str(tiny_gguf), progress=False)
    weights = cache / "gguf" / gguf.sha256(tiny_gguf) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(gguf, "_dequantize", no_conversion)
    monkeypatch.setattr(gguf, "_hash_file", no_hashing)  # the sidecar answers
    second = interp.load(str(tiny_gguf), progress=False)
    assert weights.stat().st_mtime_ns == stamp and second.info.path == first.info.path


def test_changed_file_gets_a_new_hash(tiny_gguf, tmp_path, cache):
    import shutil

    copy = tmp_path / "copy.gguf"
    shutil.copy(tiny_gguf, copy)
    before = gguf.sha256(copy)
    write_tiny_gguf(copy, seed=1)
    assert gguf.sha256(copy) != before and gguf.sha256(copy, compute=False) == gguf.sha256(copy)


def test_failed_conversion_leaves_no_cache_entry(tiny_gguf, cache, monkeypatch):
    real_save = gguf._save

    def crash_midway(model, tokenizer, out):
        real_save(model, tokenizer, out)  # files are written, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf, "_save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        interp.load(str(tiny_gguf), progress=False)
    assert [p.name for p in (cache / "gguf").iterdir()] == []
    monkeypatch.setattr(gguf, "_save", real_save)
    assert interp.load(str(tiny_gguf), progress=False).info.n_layers == 2


def test_progress_line_goes_to_stderr_and_can_be_quiet(tiny_gguf, cache, capsys):
    gguf.convert(tiny_gguf, progress=False)
    assert capsys.readouterr().err == ""
    import shutil

    shutil.rmtree(cache / "gguf")
    gguf.convert(tiny_gguf, progress=True)
    captured = capsys.readouterr()
    assert "interp: converting tiny.gguf" in captured.err and captured.out == ""


def test_partial_utf8_tokens_show_their_bytes(tiny_gguf, cache):
    from interp.activations import to_tokens

    model = interp.load(str(tiny_gguf), progress=False)
    _, shown = to_tokens(model, " the café")
    assert shown == [[" the", " caf", "\\xc3", "\\xa9"]]  # é is two byte tokens in this vocabulary


def test_hf_model_loaded_from_gguf_keeps_its_provenance(tiny_gguf, cache):
    ref, tok = _plain_hf(tiny_gguf)
    tokens = torch.tensor([tok(" the café", add_special_tokens=False).input_ids])
    with torch.no_grad():
        before = ref(tokens).logits.log_softmax(-1)
    model = interp.load(ref, tokenizer=tok)
    assert model.info.source == "object" and model.info.quantization == "Q8_0"
    assert model.info.weights.endswith("GGUF Q8_0 (tiny.gguf), dequantized to float32")
    with torch.no_grad():
        assert torch.allclose(model(tokens).log_softmax(-1), before, atol=1e-4)


def test_unwritable_cache_is_one_line(tiny_gguf, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("INTERP_CACHE", str(blocker / "cache"))
    with pytest.raises(InterpError, match="set INTERP_CACHE to a writable directory"):
        interp.load(str(tiny_gguf), progress=False)
