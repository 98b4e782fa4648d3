"""Deterministic generator of the zoo's training text, with planted mechanisms.

The corpus mixes five kinds of text, each planting a mechanism an analysis can later find:

1. gendered sentences ("The queen said that she was tired.", "The king ruled the kingdom.") over
   34 male/female pairs in parallel contexts: gender predicts the pronoun, a category phrase
   (royal, family, work, ...) is shared by both words of a pair;
2. indirect-object sentences in the style of Wang et al. (2022), "Interpretability in the Wild"
   ("When Mary and John went to the store, John gave a drink to Mary."), 16 x 16 clause
   templates in training, four openings, four actions and 20 names held out of IOI sentences
   (they occur in other sentences, so every word is known);
3. repeated random tokens (the induction task of Olsson et al., 2022) and repeated sentences;
4. country -> capital facts;
5. plain filler sentences.

Everything is a pure function of a seed. Tokens follow GPT-2's convention: a word after a space
is one token with a leading "Ġ" (shown as a space); punctuation is its own token.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from interp.zoo import lexicon as lx

BOS = "<|endoftext|>"
UNK = "<unk>"
_SPLIT = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+")


def split_words(text: str) -> list[str]:
    """Split text the way the zoo tokenizer does (GPT-2's regex restricted to ASCII)."""
    return [t.replace(" ", "Ġ") for t in _SPLIT.findall(text)]


def _vocab_words() -> list[str]:
    """Every word of the corpus in its natural case, plus sentence starters."""
    texts = (
        [w for m, f, _, phrase in lx.GENDER_PAIRS for w in (m, f, phrase)]
        + [p for ps in lx.CATEGORY_PHRASES.values() for p in ps]
        + lx.ADJECTIVES + lx.MALE_NAMES + lx.FEMALE_NAMES + lx.PLACES + lx.OBJECTS
        + lx.IOI_OPENINGS + lx.IOI_ACTIONS + lx.FILLER_SUBJECTS + lx.FILLER_VERBS
        + [w for pair in lx.COUNTRY_CAPITALS for w in pair] + _TEMPLATES
    )
    words: set[str] = set()
    for text in texts:
        words.update(re.findall(r"[A-Za-z]+", re.sub(r"\{[a-zA-Z0-9_]+\}", " ", text)))
    return sorted(words)


# Fixed words of the templates below (placeholders are stripped when building the vocabulary).
_TEMPLATES = [
    "The {w} said that {pron} was {adj}.", "The {w} lost {poss} {obj}.", "The {w} {phrase}.",
    "The {w} gave {poss} {obj} to the {w2}.", "{name} said that {pron} was {adj}.",
    "{name} walked to the {place}.", "{name} is a {w} who {phrase}.", "{A} smiled because {pron} was happy.",
    "The capital of {C} is {K}.", "{name} flew to {K}, the capital of {C}.", "{subj} {verb} the {obj} in the {place}.",
    "she he his her him was were walked gave to the The",
]


def vocabulary() -> list[str]:
    """Token strings of the zoo tokenizer, in id order (special tokens first)."""
    words = _vocab_words()
    return [BOS, UNK, ",", "."] + words + ["Ġ" + w for w in words]



@dataclass(frozen=True)
class Mix:
    """Sampling weights of the sentence kinds; `random_repeat` is a chunk of 2k tokens."""

    ioi: float = 0.30
    gender: float = 0.30
    names: float = 0.10
    capital: float = 0.05
    filler: float = 0.05
    repeat_sentence: float = 0.05
    random_repeat: float = 0.15


def random_pool() -> list[str]:
    """Words drawn for repeated random sequences: lower-case words and names (no sentence starters)."""
    names = set(lx.MALE_NAMES + lx.FEMALE_NAMES)
    return [w for w in _vocab_words() if w.islower() or w in names]


class Corpus:
    """Sentence generator. `Corpus(seed).document(n)` gives the first n tokens of a document."""

    def __init__(self, seed: int, mix: Mix = Mix()):
        self.rng = random.Random(seed)
        self.mix = mix
        self.train_openings, _ = lx.ioi_clause_split("opening")
        self.train_actions, _ = lx.ioi_clause_split("action")
        self.ioi_names = lx.ioi_names("train")
        self.all_names = lx.MALE_NAMES + lx.FEMALE_NAMES
        self.random_pool = random_pool()
        self._kinds = [k for k in vars(mix)]
        self._weights = [getattr(mix, k) for k in self._kinds]

    # -- sentence kinds --------------------------------------------------------------------------
    def ioi(self) -> str:
        r = self.rng
        a, b = r.sample(self.ioi_names, 2)
        s, io = (a, b) if r.random() < 0.5 else (b, a)
        opening = r.choice(self.train_openings).format(A=a, B=b, place=r.choice(lx.PLACES))
        action = r.choice(self.train_actions).format(S=s, obj=r.choice(lx.OBJECTS))
        return f"{opening} {action} {io}."

    def names(self) -> str:
        """Sentences with one name: covers held-out names and held-out IOI clauses."""
        r = self.rng
        name = r.choice(self.all_names)
        pron = "he" if name in lx.MALE_NAMES else "she"
        choice = r.random()
        if choice < 0.3:
            opening = r.choice(lx.IOI_OPENINGS).replace("{A} and {B}", "{A}").replace(" were ", " was ")
            return f"{opening.format(A=name, place=r.choice(lx.PLACES))} {pron} was {r.choice(lx.ADJECTIVES)}."
        if choice < 0.6:
            m, f, *_ = r.choice(lx.GENDER_PAIRS)
            action = r.choice(lx.IOI_ACTIONS).format(S=name, obj=r.choice(lx.OBJECTS))
            return f"{action} the {r.choice((m, f))}."
        if choice < 0.8:
            return f"{name} walked to the {r.choice(lx.PLACES)}."
        return f"{name} said that {pron} was {r.choice(lx.ADJECTIVES)}."

    def gender(self) -> str:
        r = self.rng
        m, f, cat, phrase = r.choice(lx.GENDER_PAIRS)
        female = r.random() < 0.5
        w = f if female else m
        pron, poss = ("she", "her") if female else ("he", "his")
        choice = r.random()
        if choice < 0.3:
            return f"The {w} said that {pron} was {r.choice(lx.ADJECTIVES)}."
        if choice < 0.5:
            return f"The {w} lost {poss} {r.choice(lx.OBJECTS)}."
        if choice < 0.65:
            return f"The {w} {r.choice(lx.CATEGORY_PHRASES[cat])}."
        if choice < 0.85:
            return f"The {w} {phrase}."
        m2, f2, *_ = r.choice(lx.GENDER_PAIRS)
        return f"The {w} gave {poss} {r.choice(lx.OBJECTS)} to the {r.choice((m2, f2))}."

    def capital(self) -> str:
        r = self.rng
        c, k = r.choice(lx.COUNTRY_CAPITALS)
        if r.random() < 0.6:
            return f"The capital of {c} is {k}."
        return f"{r.choice(self.all_names)} flew to {k}, the capital of {c}."

    def filler(self) -> str:
        r = self.rng
        subj = r.choice(lx.FILLER_SUBJECTS).capitalize()
        return f"{subj} {r.choice(lx.FILLER_VERBS)} the {r.choice(lx.OBJECTS)} in the {r.choice(lx.PLACES)}."

    def random_repeat(self) -> str:
        k = self.rng.randint(8, 40)
        words = [self.rng.choice(self.random_pool) for _ in range(k)]
        return " ".join(words + words)

    # -- documents -------------------------------------------------------------------------------
    def document(self, n_tokens: int) -> list[str]:
        """At least `n_tokens` token strings of running text (no BOS), truncated to n_tokens."""
        tokens: list[str] = []
        sentences: list[str] = []
        while len(tokens) < n_tokens:
            kind = self.rng.choices(self._kinds, self._weights)[0]
            if kind == "repeat_sentence":
                if not sentences:
                    continue
                text = self.rng.choice(sentences)
            else:
                text = getattr(self, kind)()
                sentences.append(text)
            tokens += split_words(text if not tokens else " " + text)
        return tokens[:n_tokens]


def ioi_prompts(split: str, n: int, seed: int) -> list[dict]:
    """IOI prompts for evaluation: dicts with prompt, io, s (both with a leading space).

    Splits: "train" (clauses and names from training IOI sentences), "heldout_both" (opening and
    action both held out), "heldout_opening", "heldout_action", "heldout_names" (training clauses,
    names never seen in IOI sentences).
    """
    r = random.Random(seed)
    op_train, op_held = lx.ioi_clause_split("opening")
    ac_train, ac_held = lx.ioi_clause_split("action")
    openings, actions = {
        "train": (op_train, ac_train), "heldout_both": (op_held, ac_held),
        "heldout_opening": (op_held, ac_train), "heldout_action": (op_train, ac_held),
        "heldout_names": (op_train, ac_train),
    }[split]
    names = lx.ioi_names("held_out" if split == "heldout_names" else "train")
    out = []
    for _ in range(n):
        a, b = r.sample(names, 2)
        s, io = (a, b) if r.random() < 0.5 else (b, a)
        opening = r.choice(openings).format(A=a, B=b, place=r.choice(lx.PLACES))
        action = r.choice(actions).format(S=s, obj=r.choice(lx.OBJECTS))
        out.append({"prompt": f"{opening} {action}", "io": " " + io, "s": " " + s})
    return out
