"""The zoo: corpus determinism and splits, tokenizer, committed weights meeting held-out thresholds."""

import json
import re

import pytest

from interp.models import ZOO_DIR
from interp.zoo import lexicon as lx
from interp.zoo.corpus import Corpus, ioi_prompts, split_words, vocabulary


def test_corpus_is_deterministic_and_seed_dependent():
    assert Corpus(7).document(300) == Corpus(7).document(300)
    assert Corpus(7).document(300) != Corpus(8).document(300)


def test_every_corpus_token_is_in_the_vocabulary():
    vocab = set(vocabulary())
    corpus = Corpus(3)
    for _ in range(200):
        assert set(corpus.document(128)) <= vocab


def test_committed_tokenizers_match_the_generator():
    from transformers import AutoTokenizer

    doc = Corpus(5).document(400)
    text = "".join(t.replace("Ġ", " ") for t in doc)
    for name in ("zoo-2l", "zoo-4l"):
        tok = AutoTokenizer.from_pretrained(ZOO_DIR / name)
        assert tok.convert_ids_to_tokens(tok(text)["input_ids"]) == doc
        assert len(tok) == len(vocabulary())


def test_heldout_names_and_clauses_never_in_ioi_training_sentences():
    corpus = Corpus(11)
    held_names = lx.HELDOUT_IOI_NAMES
    _, held_openings = lx.ioi_clause_split("opening")
    _, held_actions = lx.ioi_clause_split("action")
    as_regex = lambda t: re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(t))
    held_open = [re.compile(as_regex(o)) for o in held_openings]
    held_act = [re.compile(r"[,d] " + as_regex(a) + r" \w+\.$") for a in held_actions]
    assert held_open[0].match(held_openings[0].format(A="Ann", B="Bob", place="park"))
    assert held_act[0].search("At the park, " + held_actions[0].format(S="Ann", obj="cup") + " Bob.")
    for _ in range(3000):
        s = corpus.ioi()
        assert not held_names & set(re.findall(r"[A-Z][a-z]+", s))
        assert not any(r.match(s) for r in held_open), s
        assert not any(r.search(s) for r in held_act), s


def test_heldout_words_still_occur_elsewhere():
    tokens = set(Corpus(2).document(60000))
    assert {"Ġ" + name for name in lx.HELDOUT_IOI_NAMES} <= tokens
    _, held_actions = lx.ioi_clause_split("action")
    for action in held_actions:
        words = re.sub(r"\{\w+\}", " ", action).split()
        assert {"Ġ" + w for w in words} <= tokens, action


def test_ioi_prompt_splits_use_the_right_names():
    train = ioi_prompts("train", 50, 0)
    held = ioi_prompts("heldout_names", 50, 0)
    assert all(p["io"].strip() not in lx.HELDOUT_IOI_NAMES for p in train)
    assert all(p["io"].strip() in lx.HELDOUT_IOI_NAMES for p in held)
    assert all(p["io"] != p["s"] and p["prompt"].count(p["io"].strip()) == 1 for p in train)


def test_split_words_follows_gpt2_convention():
    assert split_words("When Mary went, John ran.") == ["When", "ĠMary", "Ġwent", ",", "ĠJohn", "Ġran", "."]


def test_zoo_fits_the_size_budget():
    total = sum(p.stat().st_size for p in ZOO_DIR.rglob("*") if p.is_file())
    assert total <= 30 * 2**20


@pytest.mark.slow
def test_induction_thresholds_on_heldout_sequences():
    from interp.zoo.evaluate import _hf, induction

    for name in ("zoo-2l", "zoo-4l"):
        model, _ = _hf(ZOO_DIR / name)
        r = induction(model, n_seq=40, seed=123)
        assert r["repeat_ratio"] <= 0.30, (name, r["repeat_ratio"])
    model, _ = _hf(ZOO_DIR / "zoo-2l")
    assert induction(model, n_seq=40, seed=123)["best_induction_score"] >= 0.8


@pytest.mark.slow
def test_ioi_and_gender_thresholds_on_default_model():
    from interp.zoo.evaluate import _hf, gender, ioi

    model, tok = _hf(ZOO_DIR / "zoo-4l")
    r = ioi(model, tok, "heldout_both", n=100, seed=321)
    assert r["accuracy"] >= 0.9 and r["logit_diff"] >= 2, r
    g = gender(model, tok)
    assert g["heldout_direction_accuracy"] >= 0.9
    assert g["analogy_king_man_woman"][0] == "queen"


@pytest.mark.slow
def test_card_metrics_are_reproduced_by_evaluate():
    from interp.zoo.evaluate import evaluate

    card = json.loads((ZOO_DIR / "zoo-4l" / "card.json").read_text())
    fresh = evaluate(ZOO_DIR / "zoo-4l")
    assert fresh["ioi"]["heldout_both"] == card["metrics"]["ioi"]["heldout_both"]
    assert fresh["induction"]["repeat_ratio"] == pytest.approx(card["metrics"]["induction"]["repeat_ratio"], abs=1e-3)
    assert fresh["gender"] == card["metrics"]["gender"]


@pytest.mark.slow
def test_train_smoke_writes_a_loadable_model(tmp_path):
    import interp
    from interp.zoo.train import train

    out = train("zoo-2l", tmp_path / "m", overrides={"steps": 3, "warmup": 1}, progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["recipe"]["steps"] == 3 and card["tokens_seen"] == 3 * 16 * 128
    model = interp.load(str(out))
    assert model.info.n_layers == 2 and model.info.trained
