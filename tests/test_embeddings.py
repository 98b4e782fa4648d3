"""Embedding-space analyses: neighbours, analogies, analogy files, directions, probes, and their CLI."""

from pathlib import Path

import pytest

from interp.cli import main
from interp.errors import InterpError

DATA = Path(__file__).parent / "data" / "analogies.txt"


# ---- input checks (no model) ----

def test_parse_questions_reads_sections_and_rejects_bad_lines():
    from interp.embeddings import parse_questions

    qs = parse_questions("man woman king queen\n: s2\n\na b c d\n")
    assert [(q.section, q.d, q.line) for q in qs] == [("default", "queen", 1), ("s2", "d", 4)]
    with pytest.raises(InterpError, match="line 2 has 3 words"):
        parse_questions(": s\nman woman king\n")
    with pytest.raises(InterpError, match="no questions"):
        parse_questions(": only a section\n\n")


def test_read_questions_file_errors(tmp_path):
    from interp.embeddings import read_questions

    bad = tmp_path / "latin1.txt"
    bad.write_bytes(": s\ncaf\xe9 a b c\n".encode("latin-1"))
    with pytest.raises(InterpError, match="not UTF-8"):
        read_questions(bad)
    with pytest.raises(InterpError, match="does not exist"):
        read_questions(tmp_path / "missing.txt")
    assert len(read_questions(DATA)) == 9


def test_questions_words_path_points_at_the_standard_file():
    from interp.embeddings import parse_questions, questions_words_path

    pytest.importorskip("gensim")
    qs = parse_questions(questions_words_path().read_text(encoding="utf-8"))
    assert len(qs) == 19544 and len({q.section for q in qs}) == 14


def test_pair_and_group_checks():
    from interp.embeddings.directions import check_pairs
    from interp.embeddings.probes import check_groups

    with pytest.raises(InterpError, match="at least 2 word pairs"):
        check_pairs([("man", "woman")])
    with pytest.raises(InterpError, match="bad pair"):
        check_pairs([("man", "woman"), ("king",)])
    with pytest.raises(InterpError, match="at least two labels"):
        check_groups({"male": ["man", "king"]})
    with pytest.raises(InterpError, match="fewer than 2 words"):
        check_groups({"male": ["man", "king"], "female": ["queen"]})
    with pytest.raises(InterpError, match="more than once"):
        check_groups({"male": ["man", "king"], "female": ["queen", "man"]})


def test_split_is_stratified_seeded_and_disjoint():
    import torch

    from interp.embeddings.probes import split

    y = torch.tensor([0] * 10 + [1] * 6)
    train, test = split(y, 0.3, seed=3)
    assert set(train.tolist()).isdisjoint(test.tolist()) and len(train) + len(test) == 16
    assert y[test].bincount().tolist() == [3, 2]
    assert torch.equal(split(y, 0.3, seed=3)[1], test)
    with pytest.raises(InterpError, match="test_fraction"):
        split(y, 1.5, seed=0)


def test_parse_pairs_file_format():
    from interp.commands.embed import parse_pairs

    assert parse_pairs("# c\nman woman\n\nking queen  # royal\n", "f") == [("man", "woman"), ("king", "queen")]
    with pytest.raises(InterpError, match="line 1 has 3 words"):
        parse_pairs("man woman boy\n", "f")
    with pytest.raises(InterpError, match="no word pairs"):
        parse_pairs("\n# nothing\n", "f")


# ---- zoo-4l ----

def _checkpoint_rows(model, key):
    """The input embedding read straight from the model's safetensors file (independent of interp)."""
    from safetensors.torch import load_file

    return load_file(str(Path(model.info.path) / "model.safetensors"))[key]


def test_embed_space_is_the_checkpoint_not_the_centred_copy(zoo4l, unchanged):
    import torch

    from interp.embeddings import raw_embedding, vectors

    raw = _checkpoint_rows(zoo4l, "transformer.wte.weight")
    with unchanged(zoo4l):
        assert torch.equal(raw_embedding(zoo4l), raw) and torch.equal(vectors(zoo4l), raw)
        centred = vectors(zoo4l, centre=True)
    assert torch.allclose(centred, zoo4l.W_E.detach(), atol=1e-6)  # compatibility mode's copy
    assert (raw - centred).abs().max() > 1e-3  # the two differ on this LayerNorm model


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "llama", "neox", "opt", "gemma3"])
def test_raw_embedding_is_the_checkpoint_on_other_architectures(arch, tmp_path):
    """Each family names its input embedding differently (wte, embed_tokens, embed_in, decoder.embed_tokens)."""
    import archs
    import torch
    from safetensors.torch import load_file

    import interp
    from interp.embeddings import raw_embedding

    folder = archs.build(arch, tmp_path / arch)
    model = interp.load(str(folder))
    raw = raw_embedding(model)
    assert any(v.shape == raw.shape and torch.equal(v, raw) for v in load_file(str(folder / "model.safetensors")).values())


def test_analogy_baselines_are_nearest_neighbours(zoo2l):
    """On zoo-2l, where king - man + woman ranks queen first (so does zoo-4l, retrained twice on 2026-12-01)."""
    from interp.embeddings import evaluate_analogies, neighbors, parse_questions

    qs = parse_questions(": s\nman woman king queen\nboy girl father mother\n")
    only_c = evaluate_analogies(zoo2l, qs, method="only-c").questions
    for q in only_c.itertuples():  # the nearest word to c that is not a or b
        near = neighbors(zoo2l, q.c, k=5)["word"]
        assert q.predicted == next(w for w in near if w not in (q.a, q.b))
    add, ignore = (evaluate_analogies(zoo2l, qs, method=m).questions for m in ("add", "ignore-a"))
    assert add.predicted.tolist() == ["queen", "mother"] and len(ignore) == 2
    with pytest.raises(InterpError, match="unknown analogy method"):
        evaluate_analogies(zoo2l, qs, method="mul")


def test_similarity_is_spearman_of_cosines(zoo4l):
    import torch
    from scipy.stats import spearmanr

    from interp.embeddings import evaluate_similarity, parse_word_pairs, word_token

    text = "king\tqueen\t8\nking\tdog\t1\nman\twoman\t7.5\nman\txyzzy\t5\nboy\tgirl\t7\n# c\n"
    result = evaluate_similarity(zoo4l, parse_word_pairs(text))
    assert (result.n_pairs, result.n_evaluated, result.n_skipped) == (5, 4, 1)
    E = _checkpoint_rows(zoo4l, "transformer.wte.weight")
    done = result.pairs[result.pairs.skipped == ""]
    cos = [float(torch.cosine_similarity(E[word_token(zoo4l, a)], E[word_token(zoo4l, b)], dim=0))
           for a, b in zip(done.word1, done.word2)]
    assert result.spearman == pytest.approx(spearmanr(done.human, cos).statistic, abs=1e-9)
    with pytest.raises(InterpError, match="line 1"):
        parse_word_pairs("king queen\n")

def test_king_minus_man_plus_woman_is_queen(zoo2l, unchanged):
    """zoo-2l ranks queen first (zoo-4l too, in its second 2026-12-01 training; its first ranked queen third)."""
    from interp.embeddings import analogy

    with unchanged(zoo2l):
        df = analogy(zoo2l, "king", "man", "woman", k=5)
    assert df["word"].iloc[0] == "queen"
    assert not {"king", "man", "woman"} & set(df["word"])
    assert df["cosine"].is_monotonic_decreasing


def test_neighbors_match_a_direct_cosine_and_are_word_tokens(zoo4l, unchanged):
    import torch

    from interp.embeddings import neighbors, word_token

    with unchanged(zoo4l):
        df = neighbors(zoo4l, "king", k=5)
    E = _checkpoint_rows(zoo4l, "transformer.wte.weight")
    king = E[word_token(zoo4l, "king")]
    direct = torch.nn.functional.cosine_similarity(E[df["token_id"].tolist()], king[None], dim=-1)
    assert torch.allclose(direct, torch.tensor(df["cosine"].tolist()), atol=1e-5)
    assert "king" not in set(df["word"])
    assert all(zoo4l.tokenizer.convert_ids_to_tokens(i).startswith("Ġ") for i in df["token_id"])


def test_word_errors_say_how_the_word_tokenizes(zoo4l):
    from interp.embeddings import neighbors

    with pytest.raises(InterpError, match=r"'King' is not in the vocabulary .*'<unk>'"):
        neighbors(zoo4l, "King")
    with pytest.raises(InterpError, match=r"'two words' is 2 tokens"):
        neighbors(zoo4l, "two words")
    with pytest.raises(InterpError, match="unknown space"):
        neighbors(zoo4l, "king", space="hidden")


def test_unembed_space_runs_on_a_trained_model(zoo4l):
    import torch

    from interp.embeddings import neighbors, vectors

    assert torch.equal(vectors(zoo4l, "unembed"), zoo4l.W_U.detach().T)
    assert len(neighbors(zoo4l, "Paris", k=3, space="unembed")) == 3


def test_gender_direction_separates_held_out_pairs(zoo4l, unchanged):
    from interp.embeddings import pair_direction, project
    from interp.zoo.lexicon import gender_pairs

    with unchanged(zoo4l):
        d = pair_direction(zoo4l, gender_pairs("train"), labels=("male", "female"))
        held = gender_pairs("held_out")
        table = project(zoo4l, [w for pair in held for w in pair], d)
    expected = [label for _ in held for label in ("male", "female")]
    assert (table["side"] == expected).mean() >= 0.9
    assert abs(float(d.vector.norm()) - 1) < 1e-5
    assert 0 < d.consistency < 1


def test_direction_threshold_is_midpoint_and_projection_is_cosine_times_norm(zoo4l):
    import numpy as np

    from interp.embeddings import pair_direction, project, word_token

    pairs = [("man", "woman"), ("king", "queen"), ("boy", "girl")]
    d = pair_direction(zoo4l, pairs)
    words = [w for p in pairs for w in p]
    table = project(zoo4l, words, d)
    assert table["projection"].mean() == pytest.approx(d.threshold, abs=1e-5)
    norms = _checkpoint_rows(zoo4l, "transformer.wte.weight")[[word_token(zoo4l, w) for w in words]].norm(dim=-1).numpy()
    assert np.allclose(table["cosine"] * norms, table["projection"], atol=1e-5)


def _gender_groups():
    from interp.zoo.lexicon import gender_pairs

    pairs = gender_pairs("train") + gender_pairs("held_out")
    return {"male": [m for m, _ in pairs], "female": [f for _, f in pairs]}


def test_word_probe_held_out_accuracy_and_direction_agree(zoo4l, unchanged):
    from interp.embeddings import probe_words, project

    with unchanged(zoo4l):
        probe = probe_words(zoo4l, _gender_groups(), seed=0)
    assert probe.heldout_accuracy >= 0.9 and probe.chance == 0.5
    assert probe.n_test == len(probe.heldout) and probe.n_train + probe.n_test == 68
    sides = project(zoo4l, probe.heldout["word"].tolist(), probe.direction)["side"]
    assert sides.tolist() == probe.heldout["predicted"].tolist()
    accuracy = (probe.heldout["label"] == probe.heldout["predicted"]).mean()
    assert accuracy == pytest.approx(probe.heldout_accuracy)


def test_residual_probe_embed_row_equals_the_static_probe(zoo4l, unchanged):
    from interp.embeddings import probe_residual, probe_words

    groups = _gender_groups()
    with unchanged(zoo4l):
        table = probe_residual(zoo4l, groups, template="The {word}", seed=1)
    assert table["hook"].tolist() == ["hook_embed"] + [f"blocks.{L}.hook_resid_post" for L in range(4)]
    assert table["layer"].isna().tolist() == [True, False, False, False, False]
    static = probe_words(zoo4l, groups, seed=1, centre=True)  # hook_embed is the bridge's centred copy
    assert table["heldout_accuracy"].iloc[0] == pytest.approx(static.heldout_accuracy)
    assert table["heldout_accuracy"].between(0, 1).all()
    with pytest.raises(InterpError, match="exactly once"):
        probe_residual(zoo4l, groups, template="The word")


def test_analogy_file_scores_agree_with_single_analogies(zoo4l, unchanged):
    from interp.embeddings import analogy, evaluate_analogies

    with unchanged(zoo4l):
        scores = evaluate_analogies(zoo4l, DATA)
    sec = scores.sections.set_index("section")
    assert list(sec.index) == ["family", "capital", "overall"]
    assert sec.loc["family", "n_skipped"] == 1 and "xyzzy" in scores.skipped["skipped"].iloc[0]
    assert sec.loc["overall", "n_correct"] == sec.loc[["family", "capital"], "n_correct"].sum()
    assert sec.loc["overall", "n_questions"] == 9
    done = scores.questions[scores.questions["skipped"] == ""]
    for q in done.itertuples():  # b - a + c == analogy(c, a, b)
        assert analogy(zoo4l, q.c, q.a, q.b, k=1)["word"].iloc[0] == q.predicted
    assert (done["correct"] == (done["predicted"] == done["expected"])).all()


# ---- all-MiniLM-L6-v2 (a real wordpiece encoder with an untrained unembedding) ----

@pytest.fixture(scope="module")
def minilm():
    import interp
    from interp.models import MINILM, builtin_names

    if MINILM not in builtin_names():
        pytest.skip("minilm extra not installed")
    return interp.load(MINILM)


def test_minilm_embedding_analyses_and_unembedding_refusal(minilm, unchanged):
    from interp.embeddings import analogy, neighbors, word_mask

    with unchanged(minilm):
        top = analogy(minilm, "king", "man", "woman", k=5)
        with pytest.raises(InterpError, match="allow_untrained"):
            neighbors(minilm, "king", space="unembed")
    assert "queen" in set(top["word"])
    import torch

    from interp.embeddings import raw_embedding  # the base-model checkpoint lacks BertForMaskedLM's 'bert.' prefix

    assert torch.equal(raw_embedding(minilm), _checkpoint_rows(minilm, "embeddings.word_embeddings.weight"))
    mask = word_mask(minilm)
    pieces = minilm.tokenizer.convert_ids_to_tokens(mask.nonzero()[:, 0].tolist())
    assert not any(p.startswith(("##", "[")) for p in pieces)
    with pytest.raises(InterpError, match=r"'xyzzy' is 3 tokens \['x', '##y', '##zzy'\]"):
        neighbors(minilm, "xyzzy")


# ---- CLI ----

@pytest.fixture
def cli_zoo(zoo4l, monkeypatch):
    """Run CLI commands on the session's zoo-4l instead of loading it again."""
    import interp.commands.embed as embed

    monkeypatch.setattr(embed, "load_model", lambda args: zoo4l)
    return zoo4l


def test_cli_analogy_and_neighbors(capsys):
    assert main(["analogy", "king", "man", "woman", "--model", "zoo-2l", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "queen" in out.splitlines()[2]
    assert main(["neighbors", "king", "--model", "zoo-4l", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("rank,word,token_id,cosine")


def test_cli_unknown_word_exits_2(cli_zoo, capsys):
    assert main(["analogy", "kingdomx", "man", "woman"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'kingdomx'" in err and "<unk>" in err


def test_cli_direction(zoo2l, monkeypatch, tmp_path, capsys):
    """Three pairs put monk and nun on their sides in zoo-2l (zoo-4l's 2026-12-01 weights put nun
    just on the male side of a three-pair direction; fitted on all training pairs it is right)."""
    import interp.commands.embed as embed

    monkeypatch.setattr(embed, "load_model", lambda args: zoo2l)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("man woman\nking queen\nfather mother\n")
    assert main(["direction", "--pairs", str(pairs), "--project", "monk,nun", "--labels", "male,female"]) == 0
    out = capsys.readouterr().out
    assert "3 pairs" in out and "monk" in out and "female" in out
    assert main(["direction", "--pairs", str(pairs), "--project", "monk,nun", "--format", "json"]) == 0
    assert '"side": "second"' in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (b"man woman boy\n", "line 1 has 3 words"),
    (b"\n\n", "no word pairs"),
    (b"caf\xe9 cafe\n", "not UTF-8"),
])
def test_cli_direction_bad_pairs_file_exits_2(tmp_path, capsys, content, message):
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(content)
    assert main(["direction", "--pairs", str(pairs)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_analogies(cli_zoo, capsys):
    assert main(["analogies", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "family" in out and "capital" in out and "overall" in out and "xyzzy" in out
    assert main(["analogies", str(DATA), "--show-skipped", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("section,line,a,b,c,expected,skipped") and len(lines) == 2
    assert main(["analogies", "no-such-file.txt"]) == 2


def test_cli_direction_layers_table(cli_zoo, tmp_path, capsys):
    from interp.zoo.lexicon import gender_pairs

    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{m} {f}\n" for m, f in gender_pairs("train")))
    assert main(["direction", "--pairs", str(pairs), "--layers", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("hook,layer,heldout_accuracy") and len(lines) == 1 + 5
    assert lines[1].startswith("hook_embed,")
    assert main(["direction", "--pairs", str(pairs), "--layers", "--template", "The word"]) == 2
