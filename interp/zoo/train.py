"""Train a zoo model from seed: `interp zoo train NAME` or `python -m interp.zoo.train NAME`.

The recipe of every zoo model lives in `RECIPES`; training is deterministic given the recipe,
the seed and the device. The result is an ordinary Hugging Face GPT-2 directory (config.json,
model.safetensors, tokenizer.json) plus `train_log.csv` and `card.json` with the exact config,
the machine and the wall time.

The destination (default `./NAME` in the current directory, never inside the installed package)
is checked to be writable before training starts, and the model is written into a temporary
sibling that is renamed into place (`interp.report.write.atomic_dir`): a run killed while saving
leaves no directory without its tokenizer. An existing non-empty destination needs `force=True`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

from interp.models import DEFAULT_MODEL
from interp.zoo.corpus import BOS, UNK, Corpus, Mix, vocabulary

MODELS_DIR = Path(__file__).parent / "models"  # the committed models (read-only for training)


def default_out(name: str) -> Path:
    """Where `train` writes when no destination is given: ./NAME (not the package's zoo)."""
    return Path.cwd() / name


@dataclass(frozen=True)
class Recipe:
    """Architecture, data mix and optimiser settings of one zoo model."""

    n_layer: int
    d_model: int
    n_head: int
    n_ctx: int = 128
    batch: int = 16
    steps: int = 9000
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 0.05
    seed: int = 1
    no_bos: float = 0.25  # share of training sequences that start mid-document, without BOS
    mix: Mix = field(default_factory=Mix)
    description: str = ""


RECIPES: dict[str, Recipe] = {
    "zoo-2l": Recipe(
        n_layer=2, d_model=128, n_head=4, steps=9000, lr=2e-3,
        mix=Mix(ioi=0.25, gender=0.25, names=0.1, capital=0.05, filler=0.05, repeat_sentence=0.05,
                random_repeat=0.25),
        description="2-layer attention+MLP GPT-2: the classic size for induction heads.",
    ),
    "zoo-4l": Recipe(
        n_layer=4, d_model=128, n_head=8, steps=11000, lr=2e-3,
        mix=Mix(ioi=0.15, gender=0.30, names=0.1, capital=0.05, filler=0.05, repeat_sentence=0.05,
                random_repeat=0.15, ioi_composed=0.25),
        description="4-layer GPT-2, the default model: induction, IOI and gender geometry.",
    ),
}


def build_tokenizer():
    """The zoo's word-level tokenizer as a transformers `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK,
        model_max_length=1024, clean_up_tokenization_spaces=False,
    )


def _make_chunk(args) -> list[list[int]]:
    """n_seq sequences of n_ctx + 1 tokens: BOS + a document, or (a share `no_bos`) a document
    alone, so that induction and IOI do not lean on a BOS at position 0."""
    seed, n_seq, n_ctx, mix, no_bos = args
    import random

    ids = {tok: i for i, tok in enumerate(vocabulary())}
    corpus, coin = Corpus(seed, mix), random.Random(seed + 1)
    out = []
    for _ in range(n_seq):
        bos = coin.random() >= no_bos
        out.append([0] * bos + [ids[t] for t in corpus.document(n_ctx + 1 - bos)])
    return out


def make_dataset(recipe: Recipe, n_seq: int, seed: int, workers: int = 1):
    """`n_seq` sequences of n_ctx + 1 tokens (most start with BOS); identical for any number of workers."""
    import torch

    per = 512
    jobs = [(seed * 1_000_003 + i, min(per, n_seq - i * per), recipe.n_ctx, recipe.mix, recipe.no_bos)
            for i in range(math.ceil(n_seq / per))]
    if workers > 1:
        with Pool(workers) as pool:
            chunks = pool.map(_make_chunk, jobs)
    else:
        chunks = [_make_chunk(j) for j in jobs]
    return torch.tensor([s for c in chunks for s in c], dtype=torch.long)


def _lr(step: int, r: Recipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    progress = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _gpt2_config(r: Recipe, vocab_size: int):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size, n_positions=r.n_ctx + 1, n_embd=r.d_model, n_layer=r.n_layer,
        n_head=r.n_head, n_inner=4 * r.d_model, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )


def check_out(name: str, out_dir, force: bool = False) -> Path:
    """The destination, refused before training when it is non-empty (without force), a file,
    or not writable. (Regenerating a committed model takes --out interp/zoo/models/NAME --force.)"""
    from interp.report.write import check_target, check_writable

    out_dir = check_target(out_dir if out_dir is not None else default_out(name), force)
    check_writable(out_dir, "choose a writable --out")
    return out_dir


def train(name: str, out_dir: Path | None = None, device: str = "cpu", overrides: dict | None = None,
          workers: int = 1, progress: bool = True, force: bool = False) -> Path:
    """Train zoo model `name` from its recipe (with optional field overrides) into a HF directory.

    Raises:
        InterpError: unknown name or device, or a destination that cannot take the model
            (checked before training).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import GPT2LMHeadModel

    from interp.devices import check_device
    from interp.errors import InterpError

    if name not in RECIPES:
        raise InterpError(f"no zoo recipe {name!r}; recipes: {', '.join(sorted(RECIPES))}")
    device = check_device(device)
    r = RECIPES[name]
    if overrides:
        fields = {**{k: getattr(r, k) for k in r.__dataclass_fields__}, **overrides}
        r = Recipe(**fields)
    out_dir = check_out(name, out_dir, force)
    t0 = time.time()
    data = make_dataset(r, r.steps * r.batch, seed=r.seed, workers=workers)  # before CUDA init
    data_s = time.time() - t0
    torch.manual_seed(r.seed)
    tokenizer = build_tokenizer()
    model = GPT2LMHeadModel(_gpt2_config(r, len(tokenizer))).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=r.lr, betas=(0.9, 0.95))
    log = []
    model.train()
    t1 = time.time()
    bar = tqdm(range(r.steps), desc=f"train {name}", disable=not progress, mininterval=2)
    for step in bar:
        batch = data[step * r.batch:(step + 1) * r.batch].to(device)
        for g in opt.param_groups:
            g["lr"] = _lr(step, r)
        loss = model(batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == r.steps - 1:
            log.append((step, round(loss.item(), 5), round(time.time() - t1, 2)))
            bar.set_postfix(loss=f"{loss.item():.3f}")
    train_s = time.time() - t1
    model.eval()
    from interp.report.write import atomic_dir

    with atomic_dir(out_dir, force, "choose a writable --out") as tmp:  # all files or none
        _save(model.cpu(), tokenizer, tmp, r, name, log, device, data_s, train_s)
    return out_dir


def _save(model, tokenizer, out_dir, r, name, log, device, data_s, train_s):
    import torch

    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    with open(out_dir / "train_log.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "seconds"])
        w.writerows(log)
    machine = {"device": device, "platform": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    card = {"name": name, "recipe": asdict(r), "n_params": sum(p.numel() for p in model.parameters()),
            "tokens_seen": r.steps * r.batch * r.n_ctx, "train_seconds": round(train_s, 1),
            "data_seconds": round(data_s, 1), "final_loss": log[-1][1], "machine": machine,
            "default": name == DEFAULT_MODEL}
    (out_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(RECIPES))
    p.add_argument("--out", type=Path, default=None, help="output dir (default: ./NAME)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a numeric recipe field, e.g. --set steps=200")
    p.add_argument("--workers", type=int, default=1, help="processes generating the corpus")
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        key, _, value = item.partition("=")
        if key not in Recipe.__dataclass_fields__ or key in ("mix", "description"):
            p.error(f"--set {item!r}: unknown recipe field {key!r}; numeric fields: "
                    + ", ".join(k for k in Recipe.__dataclass_fields__ if k not in ("mix", "description")))
        overrides[key] = type(getattr(RECIPES[a.name], key))(value)
    print(train(a.name, a.out, a.device, overrides, a.workers))


if __name__ == "__main__":
    main()
