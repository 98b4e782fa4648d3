"""Indirect-object identification prompts for any tokenizer (Wang et al. 2022's task, our wording).

"When Mary and John went to the store, John gave a drink to" → " Mary": the model must name the
person who is not the repeated subject. Each prompt comes with:

- `io`, `s`: the indirect object and the subject, one token each with a leading space;
- `order`: "ABBA" (IO named first: "When Mary and John ..., John gave ... to") or "BABA"
  ("When John and Mary ..., John gave ... to");
- `corrupted`: the same sentence with the second mention of S replaced by a third name C (the
  "ABC" distribution), so that no name is repeated and the IO signal is gone; same token length,
  since every name is one token;
- `template`: which of the templates it came from.

Templates come in two disjoint sets, "select" and "eval", so that heads chosen on one set are
measured on sentences of another structure. Names, places and objects are kept only when they
are one token (with a leading space) in the model's tokenizer.

Example:
    >>> import interp
    >>> from interp.tasks.ioi import ioi_prompts
    >>> rows = ioi_prompts(interp.load("zoo-4l").tokenizer, "eval", 4, seed=0)
    >>> sorted(rows[0])
    ['c', 'corrupted', 'io', 'order', 'prompt', 's', 'template']
"""

from __future__ import annotations

import random

from interp.errors import InterpError

# {A} and {B} are the two names introduced first, {S2} the repeated subject, {P} a place, {O} an object.
# No template starts with a name: a sentence-initial name has no leading space and is often two tokens.
TEMPLATES = {
    "select": [
        "When {A} and {B} went to the {P}, {S2} gave a {O} to",
        "After {A} and {B} arrived at the {P}, {S2} handed a {O} to",
        "Then, {A} and {B} were working at the {P}. {S2} decided to give a {O} to",
        "While {A} and {B} were sitting in the {P}, {S2} passed the {O} to",
        "Both {A} and {B} had a long day at the {P}. Afterwards, {S2} brought a {O} to",
        "Yesterday {A} and {B} met at the {P}, and {S2} offered a {O} to",
    ],
    "eval": [
        "When {A} and {B} got to the {P}, {S2} sent a {O} to",
        "Later that day, {A} and {B} walked into the {P}. {S2} threw the {O} to",
        "Since {A} and {B} were cleaning the {P}, {S2} lent a {O} to",
        "At the {P}, {A} and {B} had lunch together, and then {S2} sold a {O} to",
        "Today {A} and {B} spent the evening at the {P}. Eventually {S2} showed the {O} to",
        "The other day {A} and {B} visited the {P}, where {S2} returned the {O} to",
    ],
}

NAMES = ("Mary John Alice Bob Sarah James Emma David Anna Michael Laura Daniel Kate Peter Lisa Mark Susan Paul "
         "Jane Tom Helen George Rachel Steve Amy Chris Linda Kevin Julia Eric Karen Brian Lucy Adam Nancy Ryan "
         "Emily Jack Grace Sam Rose Matt Claire Jason Ellen Frank Diana Henry Alan Sophie Victoria Martin Ben "
         "Jessica Andrew Amanda Robert William Richard Joseph Thomas Charles Elizabeth Jennifer Patricia Barbara "
         "Maria Anthony Steven Edward Jacob Nicole Justin Scott Gary Laura Joshua Megan Dennis Alex").split()
PLACES = "store park school office garden station restaurant hospital library kitchen market house beach".split()
OBJECTS = "drink book ball gift letter key ring bottle bag phone cake flower apple basket".split()


def single_tokens(tokenizer, words) -> list[str]:
    """The words (kept in order, duplicates dropped) that are one token after a space; a word the
    tokenizer maps to its unknown token is not one of them."""
    out: list[str] = []
    for w in words:
        ids = tokenizer.encode(" " + w, add_special_tokens=False)
        if w not in out and len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
            out.append(w)
    return out


def vocabulary(tokenizer) -> dict[str, list[str]]:
    """Names, places and objects that are single tokens for this tokenizer.

    Raises:
        InterpError: fewer than 3 names or 1 place/object survive (the tokenizer cannot pose IOI).
    """
    vocab = {"names": single_tokens(tokenizer, NAMES), "places": single_tokens(tokenizer, PLACES),
             "objects": single_tokens(tokenizer, OBJECTS)}
    if len(vocab["names"]) < 3 or not vocab["places"] or not vocab["objects"]:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in vocab.items())
        raise InterpError(f"this tokenizer has too few one-token IOI words ({sizes}); IOI needs 3 names, "
                          "1 place and 1 object that are single tokens after a space")
    return vocab


def ioi_prompts(tokenizer, split: str, n: int, seed: int = 0) -> list[dict]:
    """`n` IOI prompts from the templates of `split` ("select" or "eval"), half ABBA, half BABA,
    templates used in turn; names drawn without replacement within a prompt (seeded)."""
    if split not in TEMPLATES:
        raise InterpError(f"IOI split {split!r} is unknown; use one of {sorted(TEMPLATES)}")
    if n < 1:
        raise InterpError(f"n = {n}: ask for at least one IOI prompt")
    vocab, rng = vocabulary(tokenizer), random.Random(seed)
    rows = []
    for i in range(n):
        t = i % len(TEMPLATES[split])
        template = TEMPLATES[split][t]
        io, s, c = rng.sample(vocab["names"], 3)
        order = "ABBA" if (i // len(TEMPLATES[split])) % 2 == 0 else "BABA"
        a, b = (io, s) if order == "ABBA" else (s, io)
        fill = {"A": a, "B": b, "P": rng.choice(vocab["places"]), "O": rng.choice(vocab["objects"])}
        rows.append({"prompt": template.format(S2=s, **fill), "corrupted": template.format(S2=c, **fill),
                     "io": " " + io, "s": " " + s, "c": " " + c, "order": order, "template": f"{split}-{t}"})
    return rows
