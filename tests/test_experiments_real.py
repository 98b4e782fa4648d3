"""The experiments on the real model smollm2-135m, each at a tiny configuration: the report is
written, and its headline numbers equal an independent recomputation from plain Hugging Face /
torch on the same converted checkpoint (the safetensors file read directly, an eager
transformers model, the plain tokenizer, scipy / scikit-learn), never interp's own functions.

`REAL` maps each experiment to its tiny keyword arguments (on top of the module's
REAL_MODEL_CONFIG, as `python -m experiments --models smollm2-135m` runs it); `CHECKS` maps it to
the function that recomputes its numbers. Add an experiment by adding an entry to both.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # `experiments` is a folder of scripts at the repo root
    sys.path.insert(0, ROOT)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
MODEL = "smollm2-135m"
TOL = 1e-4

REAL = {
    "gender_direction": dict(n_splits=1),
    "analogies": dict(max_per_section=2),
    "masking": dict(n_docs=2, n_tokens=12, n_view=1),
    "temperature": dict(temperatures=[0.0, 1.0, 2.0], sample_temperatures=[0.0], n_sample_prompts=1,
                        n_samples=2, max_new_tokens=3),
}



@pytest.fixture(scope="module")
def real(smollm2):
    """interp.load returns the session's smollm2-135m while these tests run (loaded once)."""
    import interp

    original = interp.load

    def load(name, *args, **kwargs):
        return smollm2 if name == MODEL and not args and not kwargs else original(name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(interp, "load", load)
        yield smollm2


@pytest.fixture(scope="module")
def hf(smollm2):
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.AutoModelForCausalLM.from_pretrained(smollm2.info.path, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def tok(smollm2):
    import transformers

    t = transformers.AutoTokenizer.from_pretrained(smollm2.info.path)
    t.interp_bos = smollm2.info.prepends_bos  # whether strings get BOS first (ModelInfo)
    return t


@pytest.fixture(scope="module")
def E(smollm2):
    """The checkpoint's input embedding, read from the safetensors file itself."""
    from safetensors.torch import load_file

    return load_file(str(Path(smollm2.info.path) / "model.safetensors"))["model.embed_tokens.weight"].float()


def ids(tok, text: str) -> torch.Tensor:
    """[1 pos] ids as the plain tokenizer gives them, BOS first when the model prepends one."""
    out = tok(text, add_special_tokens=False)["input_ids"]
    return torch.tensor([([tok.bos_token_id] if tok.interp_bos else []) + list(out)])


def word_id(tok, word: str) -> int | None:
    out = tok(" " + word, add_special_tokens=False)["input_ids"]
    return out[0] if len(out) == 1 else None


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------- checks, one per experiment


def check_gender_direction(out: Path, headline: dict, tok, E, hf) -> None:
    """Diff-of-means held-out accuracy from the raw embedding; the residual probe at stages 0 and
    15 by scikit-learn's logistic regression on HF hidden states (within one held-out word)."""
    pairs = pd.read_csv(out / "pairs.csv")
    train = pairs[pairs.split == "train"]
    held = pairs[pairs.split == "held_out"]
    assert set(train.male).isdisjoint(held.male) and set(train.female).isdisjoint(held.female)
    row = lambda ws: E[[word_id(tok, w) for w in ws]]  # noqa: E731
    m, f = row(train.male), row(train.female)
    d = unit((f - m).mean(0))
    threshold = ((m @ d).mean() + (f @ d).mean()) / 2
    hm, hf_ = row(held.male) @ d, row(held.female) @ d
    acc = float(((hm <= threshold).sum() + (hf_ > threshold).sum()) / (2 * len(held)))
    got = pd.read_csv(out / "accuracy.csv").set_index(["method", "split"]).accuracy["diff_of_means", "held_out"]
    assert got == pytest.approx(acc, abs=1e-6) and headline["models"][MODEL]["dom_heldout"] == pytest.approx(acc, abs=1e-6)
    _check_residual_probe(out, tok, hf, train, held)


def _check_residual_probe(out, tok, hf, train, held) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    words = list(train.male) + list(train.female) + list(held.male) + list(held.female)
    y = [0] * len(train) + [1] * len(train) + [0] * len(held) + [1] * len(held)
    n_train = 2 * len(train)
    x = torch.cat([ids(tok, "The " + w) for w in words])  # "The {word}": the same length for every word
    assert x[:, -1].tolist() == [word_id(tok, w) for w in words]
    with torch.no_grad():
        hs = hf(x, output_hidden_states=True).hidden_states
    table = pd.read_csv(out / "probe_by_layer.csv")
    table = table[table.labels == "gender"].set_index("stage")
    for stage in (0, 15):  # hidden_states[k] = the residual after k blocks (the last is after the final norm)
        X = hs[stage][:, -1].double().numpy()
        scaler = StandardScaler().fit(X[:n_train])
        clf = LogisticRegression(C=1 / (1e-2 * n_train), max_iter=2000).fit(scaler.transform(X[:n_train]), y[:n_train])
        acc = float((clf.predict(scaler.transform(X[n_train:])) == y[n_train:]).mean())
        assert abs(table.heldout_accuracy[stage] - acc) <= 1 / (2 * len(held)) + 1e-9, f"stage {stage}"


def check_analogies(out: Path, headline: dict, tok, E, hf) -> None:
    """add and only-c accuracy by plain torch over the raw embedding's whole-word tokens; the
    WordSim-353 Spearman by scipy."""
    from scipy.stats import spearmanr

    from interp.embeddings import questions_words_path, similarity_path

    vocab = tok.convert_ids_to_tokens(list(range(E.shape[0])))
    special = set(tok.all_special_ids)
    cand = torch.tensor([i not in special and p.startswith("Ġ") and p[1:].isalpha() for i, p in enumerate(vocab)])
    seen, qs = {}, []
    for line in questions_words_path().read_text().splitlines():
        if line.startswith(":"):
            sec = line
            continue
        seen[sec] = seen.get(sec, 0) + 1
        if seen[sec] <= 2:
            q = [word_id(tok, w) for w in line.split()]
            if all(i is not None and cand[i] for i in q):
                qs.append(q)
    q = torch.tensor(qs)
    U = unit(E)
    acc = {}
    for method, target in (("add", U[q[:, 1]] - U[q[:, 0]] + U[q[:, 2]]), ("only-c", U[q[:, 2]])):
        s = (unit(target) @ U.T).masked_fill(~cand, float("-inf"))
        s.scatter_(1, q[:, :3], float("-inf"))
        acc[method] = float((s.argmax(-1) == q[:, 3]).float().mean())
    base = pd.read_csv(out / "baselines.csv")
    ov = base[base.section == "overall"].set_index("method")
    assert int(ov.n_evaluated["add"]) == len(qs)
    for method, value in acc.items():
        assert ov.accuracy[method] == pytest.approx(value, abs=1e-6), method
    assert headline["baselines"][MODEL]["add"] == pytest.approx(acc["add"], abs=1e-6)
    human, cos = [], []
    for line in similarity_path("wordsim353").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")
        i, j = word_id(tok, a), word_id(tok, b)
        if i is not None and j is not None:
            human.append(float(score))
            cos.append(float(U[i] @ U[j]))
    sim = pd.read_csv(out / "similarity.csv").set_index(["benchmark", "embedding"])
    assert sim.n_evaluated["wordsim353", "raw"] == len(human)
    assert sim.spearman["wordsim353", "raw"] == pytest.approx(spearmanr(human, cos).statistic, abs=1e-5)


def check_masking(out: Path, headline: dict, tok, E, hf) -> None:
    """Per-document loss clean, with one layer's mask removed and with all removed, by the eager
    HF model with its additive mask replaced by zeros; one head's unmasked future mass."""
    import archs

    cfg = json.loads((out / "config.json").read_text())["config"]
    docs = pd.read_csv(out / "documents.csv").text
    x = torch.cat([ids(tok, d)[:, :cfg["n_tokens"]] for d in docs])
    per = pd.read_csv(out / "mask_removal_by_doc.csv").set_index(["removed", "doc"]).loss
    n = hf.config.num_hidden_layers
    best = headline["best_layer"]
    for removed, layers in (("none", []), (best, [int(best)]), ("all", list(range(n)))):
        with archs.unmasked(hf, layers), torch.no_grad():
            logp = hf(x).logits[:, :-1].float().log_softmax(-1)
        ref = -logp.gather(-1, x[:, 1:, None])[..., 0].mean(-1)
        for doc in range(len(docs)):
            assert per[removed, doc] == pytest.approx(float(ref[doc]), abs=TOL), (removed, doc)
    assert headline["loss_all"] == pytest.approx(float(per["all"].mean()), abs=1e-5)
    heads = pd.read_csv(out / "future_mass.csv")
    top = heads.sort_values("future_mass", ascending=False).iloc[0]
    L, h = int(top.layer), int(top["head"])
    masses = []
    for doc in range(len(docs)):
        with archs.unmasked(hf, [L]):
            att = archs.attentions(hf, x[doc:doc + 1])[L, h]  # [query key]
        masses.append(float(att.triu(1).sum(-1).mean()))
    assert top.future_mass == pytest.approx(sum(masses) / len(masses), abs=TOL)


def check_temperature(out: Path, headline: dict, tok, E, hf) -> None:
    """Entropy at T = 1 and T = 2 of every prompt from HF logits; the greedy sample = HF argmax loop."""
    from experiments.temperature import PROMPT_SETS

    ent = pd.read_csv(out / "entropy.csv").set_index(["prompt_name", "temperature"]).entropy_nats
    prompts = PROMPT_SETS["english"]
    for name, prompt in prompts.items():
        with torch.no_grad():
            logits = hf(ids(tok, prompt)).logits[0, -1].double()
        for T in (1.0, 2.0):
            logp = (logits / T).log_softmax(-1)
            assert ent[name, T] == pytest.approx(float(-(logp.exp() * logp).sum()), abs=TOL), (name, T)
        assert ent[name, 0.0] == 0
    assert headline["entropy_at_T1"]["capital"] == pytest.approx(ent["capital", 1.0], abs=1e-6)
    name, prompt = next(iter(prompts.items()))
    x, new = ids(tok, prompt), []
    for _ in range(3):
        with torch.no_grad():
            nxt = int(hf(x).logits[0, -1].argmax())
        if nxt == tok.eos_token_id:
            break
        new.append(nxt)
        x = torch.cat([x, torch.tensor([[nxt]])], dim=1)
    samples = pd.read_csv(out / "samples.csv", keep_default_na=False)
    greedy = samples[(samples.prompt_name == name) & (samples.temperature == 0.0)].text
    assert set(greedy) == {tok.decode(new)}


CHECKS = {"gender_direction": check_gender_direction, "analogies": check_analogies, "masking": check_masking,
          "temperature": check_temperature}


@pytest.mark.parametrize("name", sorted(REAL))
def test_experiment_on_the_real_model(name, tmp_path, real, hf, tok, E, unchanged):
    module = importlib.import_module(f"experiments.{name}")
    cfg = module.Config(model=MODEL, out=str(tmp_path / name), **{**getattr(module, "REAL_MODEL_CONFIG", {}),
                                                                  **REAL[name]})
    with unchanged(real):
        headline = module.main(cfg)
    out = tmp_path / name
    for f in ("README.md", "index.html", "config.json"):
        assert (out / f).is_file(), f
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == MODEL and config["headline"]["summary"] == headline["summary"]
    assert MODEL in (out / "README.md").read_text()
    CHECKS[name](out, headline, tok, E, hf)
