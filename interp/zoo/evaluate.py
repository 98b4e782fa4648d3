"""Held-out metrics of a zoo model, recomputed from its weights: `interp zoo evaluate NAME`.

Every metric is measured on data the model never trained on:

- induction: fresh random sequences of 30 tokens (a seed never used in training), repeated once:
  loss on the repeat / loss on the first copy, and the best per-head induction score (mean
  attention from each repeated token to the token after its earlier copy). Three sources: tokens
  drawn uniformly from the whole vocabulary after BOS ("vocab") and without BOS ("vocab_no_bos"),
  and the lower-case word pool of readable prompts ("pool");
- IOI: prompts of sentence structures, verbs or names held out of IOI training sentences
  (`interp.zoo.grammar`), the hand-written templates of `interp.tasks.ioi` ("tasks": written for
  real models; the grammar borrows some of their phrases, but never produces one of them), and
  two independent checks, templates written by helpers who were given only the vocabulary and
  the task ("unseen", `unseen_ioi.txt`; "blind", `blind_ioi.txt`, which the grammar's authors
  never read: "unseen" was read when the grammar was widened); the indirect object must outrank the subject (accuracy, mean logit
  difference);
- gender: a diff-of-means direction fitted on the training pairs classifies the words of the
  held-out pairs; king - man + woman is ranked by cosine in the input embedding.

The functions run on the plain Hugging Face model so that evaluation does not depend on the
analysis layer it is used to check.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interp.zoo import grammar, lexicon as lx
from interp.zoo.corpus import IOI_SPLITS, ioi_prompts, random_pool, vocabulary

INDUCTION_SOURCES = ("vocab", "vocab_no_bos", "pool")
EVAL_SEED = 10_000  # never used as a training seed


def _hf(model_dir):
    """The zoo model in `model_dir` and its tokenizer; one line if it is not a complete GPT-2 zoo model."""
    import transformers
    from safetensors import SafetensorError
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from interp.errors import InterpError
    from interp.models import check_checkpoint, check_loaded

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        check_checkpoint(str(model_dir), str(model_dir))
        model, report = GPT2LMHeadModel.from_pretrained(model_dir, attn_implementation="eager",
                                                        output_loading_info=True, local_files_only=True)
        if report.get("missing_keys"):
            raise InterpError(f"{str(model_dir)!r} is not a zoo model: its checkpoint lacks "
                              f"{len(report['missing_keys'])} GPT-2 weights (e.g. {sorted(report['missing_keys'])[0]}), "
                              "which would be random")
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        check_loaded(str(model_dir), model, tokenizer)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        if isinstance(e, InterpError):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InterpError(f"could not load a zoo model from {str(model_dir)!r}: {first}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    return model.eval(), tokenizer


def induction(model, tokenizer, n_seq: int = 100, length: int = 30, seed: int = EVAL_SEED,
              source: str = "vocab") -> dict:
    """Repeat/first-copy loss ratio and per-head induction scores on random repeated tokens.

    `source`: "vocab" (uniform over every token but BOS/UNK, after BOS), "vocab_no_bos" (the
    same without BOS: position 0 is the first random token), "pool" (lower-case words, after BOS).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    index = tokenizer.get_vocab()
    special = set(tokenizer.all_special_ids)
    if source.startswith("vocab"):
        words = torch.tensor(sorted(i for i in index.values() if i not in special))
    else:
        words = torch.tensor([index["Ġ" + w] for w in random_pool() if "Ġ" + w in index])
    seq = words[torch.randint(len(words), (n_seq, length), generator=g)]
    bos = torch.zeros(n_seq, 0 if source == "vocab_no_bos" else 1, dtype=torch.long)
    tokens, o = torch.cat([bos, seq, seq], dim=1), bos.shape[1]  # o: position of the first random token
    with torch.no_grad():
        out = model(tokens, output_attentions=True)
    logp = out.logits.log_softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    # logp[:, p] is the log-probability of token p + 1
    first = -logp[:, o:o + length - 1].mean().item()          # tokens 2..L of the first copy
    repeat = -logp[:, o + length:o + 2 * length - 1].mean().item()  # tokens 2..L of the repeat
    q = torch.arange(o + length, o + 2 * length)               # query positions in the repeat
    k = q - length + 1                                          # the token after the earlier copy
    scores = [att[:, :, q, k].mean(dim=(0, 2)).tolist() for att in out.attentions]
    best = max((s, l, h) for l, row in enumerate(scores) for h, s in enumerate(row))
    return {"loss_first": round(first, 4), "loss_repeat": round(repeat, 4),
            "repeat_ratio": round(repeat / first, 4), "best_induction_score": round(best[0], 4),
            "best_induction_head": f"L{best[1]}H{best[2]}", "head_scores": scores}


def check_prompts(name: str, n: int, seed: int) -> list[dict]:
    """n prompts from the templates of an independent check (`grammar.check_templates`) in turn,
    training names, IO first and second in equal numbers."""
    import random

    templates, rng, names = grammar.check_templates(name), random.Random(seed), lx.ioi_names("train")
    rows = []
    for i in range(n):
        a, b = rng.sample(names, 2)
        s, io = (a, b) if (i // len(templates)) % 2 else (b, a)
        fill = dict(A=a, B=b, S=s, P=rng.choice(lx.PLACES), O=rng.choice(lx.OBJECTS))
        rows.append({"prompt": templates[i % len(templates)].format(**fill), "io": " " + io, "s": " " + s})
    return rows


def ioi_rows(tokenizer, split: str, n: int = 200, seed: int = EVAL_SEED) -> list[dict]:
    """Prompts of a zoo split, of an independent check ("unseen", "blind"), or ("tasks") of every
    template of `interp.tasks.ioi`, in turn."""
    if split in grammar.CHECKS:
        return check_prompts(split, n, seed)
    if split != "tasks":
        return ioi_prompts(split, n, seed)
    from interp.tasks.ioi import ioi_prompts as task_prompts

    half = n // 2
    return task_prompts(tokenizer, "select", n - half, seed) + task_prompts(tokenizer, "eval", half, seed + 1)


def ioi(model, tokenizer, split: str, n: int = 200, seed: int = EVAL_SEED) -> dict:
    """IOI accuracy (IO logit > S logit) and mean logit difference on one split."""
    return ioi_accuracy(model, tokenizer, ioi_rows(tokenizer, split, n, seed))


def ioi_accuracy(model, tokenizer, prompts: list[dict]) -> dict:
    """IO > S accuracy, mean logit difference and IO top-1 rate on rows with prompt, io, s
    (one plain forward, left-padded after BOS)."""
    import torch

    enc = tokenizer([tokenizer.bos_token + p["prompt"] for p in prompts], return_tensors="pt",
                    padding=True, padding_side="left")
    io = torch.tensor([tokenizer.convert_tokens_to_ids("Ġ" + p["io"][1:]) for p in prompts])
    s = torch.tensor([tokenizer.convert_tokens_to_ids("Ġ" + p["s"][1:]) for p in prompts])
    with torch.no_grad():
        positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # left padding
        logits = model(**enc, position_ids=positions).logits[:, -1]
    diff = logits.gather(1, io[:, None])[:, 0] - logits.gather(1, s[:, None])[:, 0]
    top1 = (logits.argmax(-1) == io).float().mean().item()
    return {"accuracy": round((diff > 0).float().mean().item(), 4),
            "logit_diff": round(diff.mean().item(), 4), "top1": round(top1, 4), "n": len(prompts)}


def gender(model, tokenizer) -> dict:
    """Held-out accuracy of the train-pair gender direction, and king - man + woman."""
    import torch

    W_E = model.get_input_embeddings().weight.detach()
    ids = lambda words: torch.tensor([tokenizer.convert_tokens_to_ids("Ġ" + w) for w in words])
    train, held = lx.gender_pairs("train"), lx.gender_pairs("held_out")
    m_tr, f_tr = W_E[ids([m for m, _ in train])], W_E[ids([f for _, f in train])]
    direction = (f_tr - m_tr).mean(0)
    threshold = ((m_tr + f_tr) / 2 @ direction).mean()
    m_ho, f_ho = W_E[ids([m for m, _ in held])] @ direction, W_E[ids([f for _, f in held])] @ direction
    acc = torch.cat([m_ho < threshold, f_ho > threshold]).float().mean().item()
    a, b, c = ids(["king", "man", "woman"])
    target = W_E[a] - W_E[b] + W_E[c]
    cos = torch.nn.functional.cosine_similarity(W_E, target[None], dim=-1)
    words = [i for i, t in enumerate(vocabulary()) if t.startswith("Ġ")]
    mask = torch.full_like(cos, float("-inf"))
    mask[words] = 0
    mask[torch.stack([a, b, c])] = float("-inf")
    top = (cos + mask).topk(5).indices
    return {"heldout_direction_accuracy": round(acc, 4), "n_heldout_words": 2 * len(held),
            "analogy_king_man_woman": [tokenizer.convert_ids_to_tokens(int(i))[1:] for i in top]}


def evaluate(model_dir, n: int = 200) -> dict:
    """All held-out metrics of the model in `model_dir`."""
    import torch

    torch.manual_seed(0)
    model, tokenizer = _hf(model_dir)
    result = {"induction": {}}
    for source in INDUCTION_SOURCES:
        result["induction"][source] = induction(model, tokenizer, source=source)
        result["induction"][source].pop("head_scores")
    result["ioi"] = {split: ioi(model, tokenizer, split, n) for split in (*IOI_SPLITS, "tasks", *grammar.CHECKS)}
    result["gender"] = gender(model, tokenizer)
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    a = p.parse_args(argv)
    print(json.dumps(evaluate(a.model_dir), indent=2))


if __name__ == "__main__":
    main()
