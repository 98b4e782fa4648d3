"""Deterministic generator of the zoo's training text, with planted mechanisms.

The corpus mixes five kinds of text, each planting a mechanism an analysis can later find:

1. gendered sentences ("The queen said that she was tired.", "The king ruled the kingdom.") over
   34 male/female pairs in parallel contexts: gender predicts the pronoun, a category phrase
   (royal, family, work, ...) is shared by both words of a pair;
2. indirect-object sentences in the style of Wang et al. (2022), "Interpretability in the Wild"
   ("Yesterday, Mary met John at the park, and John gave a cup to Mary."), drawn from the
   grammar of `interp.zoo.grammar`: six frames x four ways of introducing the two people, fronted
   phrases, adverbs, modals, twenty verbs with "to" or "for". Nine of the 24 structures, three
   verbs and 20 names are held out of IOI sentences (the names occur in other sentences, so every
   word is known);
3. repeated random tokens (the induction task of Olsson et al., 2022) drawn uniformly from the
   whole vocabulary (sentence starters, capitals, punctuation and no-space forms included), and
   repeated sentences;
4. country -> capital facts;
5. plain filler sentences.

Everything is a pure function of a seed. Tokens follow GPT-2's convention: a word after a space
is one token with a leading "Ġ" (shown as a space); punctuation is its own token.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from interp.zoo import grammar
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
        + grammar.words() + lx.FILLER_SUBJECTS + lx.FILLER_VERBS
        + [w for pair in lx.COUNTRY_CAPITALS for w in pair] + _TEMPLATES
    )
    return sorted(grammar.template_words(texts))


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
    """Sampling weights of the sentence kinds; `random_repeat` is a chunk of 2k random tokens."""

    ioi: float = 0.30
    gender: float = 0.30
    names: float = 0.10
    capital: float = 0.05
    filler: float = 0.05
    repeat_sentence: float = 0.05
    random_repeat: float = 0.15
    ioi_composed: float = 0.0  # IOI sentences whose introduction is composed from corpus clauses


def random_pool() -> list[str]:
    """Lower-case words and names (no sentence starters): the words of readable random prompts."""
    names = set(lx.MALE_NAMES + lx.FEMALE_NAMES)
    return [w for w in _vocab_words() if w.islower() or w in names]


def random_tokens() -> list[str]:
    """Every token but BOS and UNK: what repeated random sequences are drawn from, uniformly."""
    return vocabulary()[2:]


class Corpus:
    """Sentence generator. `Corpus(seed).document(n)` gives the first n tokens of a document."""

    def __init__(self, seed: int, mix: Mix = Mix()):
        self.rng = random.Random(seed)
        self.mix = mix
        self.ioi_structures = grammar.structures("train")
        self.ioi_names = lx.ioi_names("train")
        self.all_names = lx.MALE_NAMES + lx.FEMALE_NAMES
        self.random_tokens = random_tokens()
        self._kinds = [k for k in vars(mix)]
        self._weights = [getattr(mix, k) for k in self._kinds]

    # -- sentence kinds --------------------------------------------------------------------------
    def ioi(self) -> str:
        return self.ioi_structured()[0]

    def ioi_structured(self) -> tuple[str, tuple[str, str]]:
        """A training IOI sentence and its (frame, intro) structure; never an evaluation template."""
        r, chosen = self.rng, []

        def build(a, b, s):
            chosen[:] = [r.choice(self.ioi_structures)]
            return grammar.sentence(r, chosen[0], a, b, s)

        prompt, io, _ = grammar.draw(r, self.ioi_names, build)
        return f"{prompt} {io}.", chosen[0]

    def ioi_composed(self) -> str:
        """An IOI sentence with an introduction composed from corpus clauses
        (`interp.zoo.grammar.composed`): the names apart or together, asides around them."""
        r = self.rng
        prompt, io, _ = grammar.draw(r, self.ioi_names, lambda a, b, s: grammar.composed(r, a, b, s))
        return f"{prompt} {io}."

    def names(self) -> str:
        """Sentences with one name: covers held-out names and held-out IOI clauses."""
        r = self.rng
        name = r.choice(self.all_names)
        pron = "he" if name in lx.MALE_NAMES else "she"
        choice = r.random()
        if choice < 0.3:
            pred = grammar.singular(r.choice(grammar.PREDICATES)).format(P=r.choice(lx.PLACES))
            return f"{r.choice(grammar.CONJUNCTIONS)} {name} {pred}, {pron} was {r.choice(lx.ADJECTIVES)}."
        if choice < 0.6:
            m, f, *_ = r.choice(lx.GENDER_PAIRS)
            past, _, prep = r.choice(grammar.VERBS)
            return f"{name} {past} the {r.choice(lx.OBJECTS)} {prep} the {r.choice((m, f))}."
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

    def random_repeat(self) -> list[str]:
        """k uniformly random tokens, then the same k again (a token list: no text round trip)."""
        k = self.rng.randint(8, 40)
        tokens = [self.rng.choice(self.random_tokens) for _ in range(k)]
        return tokens + tokens

    # -- documents -------------------------------------------------------------------------------
    def document(self, n_tokens: int, text_only: bool = False) -> list[str]:
        """At least `n_tokens` token strings of running text (no BOS), truncated to n_tokens;
        `text_only` leaves out the random token runs (they have no text form)."""
        tokens: list[str] = []
        sentences: list[str] = []
        while len(tokens) < n_tokens:
            kind = self.rng.choices(self._kinds, self._weights)[0]
            if text_only and kind == "random_repeat":
                continue
            if kind == "repeat_sentence":
                if not sentences:
                    continue
                text = self.rng.choice(sentences)
            else:
                text = getattr(self, kind)()
                if isinstance(text, list):
                    tokens += text
                    continue
                sentences.append(text)
            tokens += split_words(text if not tokens else " " + text)
        return tokens[:n_tokens]


def text(corpus: Corpus, n_tokens: int) -> str:
    """A document of `corpus` as text ("The king ruled the kingdom. When ..."), without random
    token runs: what tokenizes back to the same n_tokens tokens."""
    return "".join(corpus.document(n_tokens, text_only=True)).replace("Ġ", " ")


IOI_SPLITS = ("train", "heldout_structures", "heldout_names")


def ioi_prompts(split: str, n: int, seed: int) -> list[dict]:
    """IOI prompts for evaluation: dicts with prompt, io, s (both with a leading space), structure.

    Splits: "train" (training structures, verbs and names, in new combinations),
    "heldout_structures" (structures never in an IOI training sentence, any verb),
    "heldout_names" (training structures, names never seen in an IOI sentence).
    """
    if split not in IOI_SPLITS:
        from interp.errors import InterpError

        raise InterpError(f"zoo IOI split {split!r} is unknown; use one of {', '.join(IOI_SPLITS)}")
    r = random.Random(seed)
    kinds = grammar.structures("held_out" if split == "heldout_structures" else "train")
    names = lx.ioi_names("held_out" if split == "heldout_names" else "train")
    verbs = "all" if split == "heldout_structures" else "train"
    out = []
    while len(out) < n:
        structure = kinds[len(out) % len(kinds)]
        prompt, io, s = grammar.draw(r, names, lambda a, b, s: grammar.sentence(r, structure, a, b, s, verbs))
        out.append({"prompt": prompt, "io": " " + io, "s": " " + s, "structure": "/".join(structure)})
    return out
