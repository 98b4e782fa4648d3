"""The zoo: corpus determinism and splits, tokenizer, committed weights meeting held-out thresholds."""

import json
import re

import pytest

from interp.models import ZOO_DIR
from interp.zoo import lexicon as lx
from interp.zoo import grammar
from interp.zoo.corpus import Corpus, ioi_prompts, split_words, vocabulary


def test_corpus_is_deterministic_and_seed_dependent():
    assert Corpus(7).document(300) == Corpus(7).document(300)
    assert Corpus(7).document(300) != Corpus(8).document(300)


@pytest.mark.parametrize("recipe", ["zoo-2l", "zoo-4l"])
def test_every_corpus_token_is_in_the_vocabulary(recipe):
    from interp.zoo.train import RECIPES

    vocab = set(vocabulary())
    corpus = Corpus(3, RECIPES[recipe].mix)
    for _ in range(200):
        assert set(corpus.document(128)) <= vocab


def test_committed_tokenizers_match_the_generator():
    from transformers import AutoTokenizer

    doc = Corpus(5).document(400, text_only=True)  # random tokens have no text form
    text = "".join(t.replace("Ġ", " ") for t in doc)
    for name in ("zoo-2l", "zoo-4l"):
        tok = AutoTokenizer.from_pretrained(ZOO_DIR / name)
        assert tok.convert_ids_to_tokens(tok(text)["input_ids"]) == doc
        assert len(tok) == len(vocabulary())


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text))


def test_heldout_structures_verbs_and_names_never_in_ioi_training_sentences():
    corpus = Corpus(11)
    held_verbs = grammar.HELDOUT_VERBS | {base for past, base, _ in grammar.VERBS if past in grammar.HELDOUT_VERBS}
    seen = set()
    for _ in range(3000):
        text, structure = corpus.ioi_structured()
        seen.add(structure)
        assert structure not in grammar.HELDOUT_STRUCTURES
        assert not (lx.HELDOUT_IOI_NAMES | held_verbs) & _words(text), text
        assert ", where " not in text  # the relative frame is held out whole
        assert not grammar.is_eval_template(text.rsplit(" ", 1)[0]), text
    assert seen == set(grammar.structures("train"))
    for _ in range(3000):  # composed introductions keep the held-out frames, verbs and names out too
        text = corpus.ioi_composed()
        assert ", where " not in text and not (lx.HELDOUT_IOI_NAMES | held_verbs) & _words(text), text
        assert not grammar.is_eval_template(text.rsplit(" ", 1)[0]), text


def test_task_templates_are_recognised_and_never_generated():
    from interp.tasks.ioi import TEMPLATES

    fill = dict(A="Mary", B="John", S2="John", P="park", O="cup")
    for template in (t for group in TEMPLATES.values() for t in group):
        assert grammar.is_eval_template(template.format(**fill))
        assert not grammar.is_eval_template("Later, " + template.format(**fill))


def test_heldout_structure_prompts_are_the_heldout_structures():
    rows = ioi_prompts("heldout_structures", 60, 0)
    assert {tuple(r["structure"].split("/")) for r in rows} == grammar.HELDOUT_STRUCTURES
    for r in rows:
        words = re.findall(r"[A-Za-z]+", r["prompt"])
        assert words[-1] in ("to", "for") and words.count(r["s"].strip()) == 2 and words.count(r["io"].strip()) == 1, r


def test_task_prompts_are_posed_in_the_zoo_vocabulary():
    """Every word of `interp.tasks.ioi` is a zoo token, and its names are not the unknown token."""
    from interp.tasks.ioi import NAMES, OBJECTS, PLACES, TEMPLATES, single_tokens
    from interp.tasks.ioi import vocabulary as task_vocabulary
    from interp.zoo.train import build_tokenizer

    tokens = set(vocabulary())
    words = {w for group in TEMPLATES.values() for t in group for w in _words(re.sub(r"\{\w+\}", " ", t))}
    assert {"Ġ" + w for w in words | set(NAMES) | set(PLACES) | set(OBJECTS)} <= tokens
    tok = build_tokenizer()
    assert task_vocabulary(tok)["names"] == list(dict.fromkeys(NAMES))
    assert single_tokens(tok, ["Zyxwv", "Mary"]) == ["Mary"]  # one token, but the unknown one


def test_ioi_prompt_splits_use_the_right_names():
    train = ioi_prompts("train", 50, 0)
    held = ioi_prompts("heldout_names", 50, 0)
    assert all(p["io"].strip() not in lx.HELDOUT_IOI_NAMES for p in train)
    assert all(p["io"].strip() in lx.HELDOUT_IOI_NAMES for p in held)
    assert all(p["io"] != p["s"] and re.findall(r"[A-Za-z]+", p["prompt"]).count(p["io"].strip()) == 1 for p in train)


def test_split_words_follows_gpt2_convention():
    assert split_words("When Mary went, John ran.") == ["When", "ĠMary", "Ġwent", ",", "ĠJohn", "Ġran", "."]


def test_zoo_fits_the_size_budget():
    total = sum(p.stat().st_size for p in ZOO_DIR.rglob("*") if p.is_file())
    assert total <= 30 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zoo-2l", "zoo-4l"])
def test_induction_on_uniform_random_tokens_with_and_without_bos(name):
    """The acceptance of the zoo: in-context copying of any token, BOS or none (a fresh seed)."""
    from interp.zoo.evaluate import _hf, induction

    model, tok = _hf(ZOO_DIR / name)
    for source in ("vocab", "vocab_no_bos"):
        r = induction(model, tok, n_seq=40, seed=123, source=source)
        assert r["repeat_ratio"] <= 0.1, (name, source, r["repeat_ratio"])
    assert induction(model, tok, n_seq=40, seed=123)["best_induction_score"] >= 0.8


@pytest.mark.slow
def test_ioi_and_gender_thresholds_on_default_model():
    from interp.zoo.evaluate import _hf, gender, ioi

    model, tok = _hf(ZOO_DIR / "zoo-4l")
    r = ioi(model, tok, "heldout_structures", n=100, seed=321)
    assert r["accuracy"] >= 0.9 and r["logit_diff"] >= 2, r
    assert ioi(model, tok, "tasks", n=96, seed=321)["accuracy"] >= 0.85
    g = gender(model, tok)
    assert g["heldout_direction_accuracy"] >= 0.9
    assert "queen" in g["analogy_king_man_woman"][:3]  # measured: queen first (2026-12-01 weights, second training)


@pytest.mark.slow
def test_card_metrics_are_reproduced_by_evaluate():
    from interp.zoo.evaluate import evaluate

    card = json.loads((ZOO_DIR / "zoo-4l" / "card.json").read_text())
    fresh = evaluate(ZOO_DIR / "zoo-4l")
    assert fresh["ioi"]["heldout_structures"] == card["metrics"]["ioi"]["heldout_structures"]
    assert fresh["ioi"]["tasks"] == card["metrics"]["ioi"]["tasks"]
    for source in ("vocab", "vocab_no_bos"):
        assert fresh["induction"][source]["repeat_ratio"] == pytest.approx(
            card["metrics"]["induction"][source]["repeat_ratio"], abs=1e-3)
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


@pytest.mark.parametrize("check", grammar.CHECKS)
def test_check_templates_are_in_the_vocabulary_and_never_generated(check):
    from interp.zoo.evaluate import check_prompts
    from interp.zoo.train import RECIPES

    templates = grammar.check_templates(check)
    assert len(templates) == {"unseen": 16, "blind": 20}[check]
    tokens = set(vocabulary())
    for row in check_prompts(check, len(templates), 0):
        assert set(split_words(row["prompt"])) <= tokens, row["prompt"]
        assert grammar.is_eval_template(row["prompt"])
        assert grammar.is_eval_template("The dog saw the cup in the park. " + row["prompt"])
    assert not grammar.is_eval_template("Later " + check_prompts(check, 1, 0)[0]["prompt"])
    corpus = Corpus(4, RECIPES["zoo-4l"].mix)
    for _ in range(3000):  # the filter, not chance, keeps them out: checked on both IOI kinds
        for text in (corpus.ioi(), corpus.ioi_composed()):
            assert not grammar.is_eval_template(text.rsplit(" ", 1)[0]), text


@pytest.mark.slow
@pytest.mark.parametrize("check", grammar.CHECKS)
def test_ioi_on_independent_templates(check):
    """The independent checks of issue #18: templates written without seeing the grammar, >= 85%
    ("blind" was never read by the grammar's authors)."""
    from interp.zoo.evaluate import _hf, ioi

    model, tok = _hf(ZOO_DIR / "zoo-4l")
    r = ioi(model, tok, check, n=160, seed=5)
    assert r["accuracy"] >= 0.85, r
