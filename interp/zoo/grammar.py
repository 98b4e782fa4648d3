"""A grammar of indirect-object sentences, with whole sentence structures held out of training.

An IOI prompt names two people, A and B, then lets one of them (the subject S) act on the
other, and stops where the other (the indirect object IO) must be named:

    "Yesterday, Mary met John at the park, and John later gave a cup to"   ->  " Mary"

A *structure* is a (frame, intro) pair. The intro introduces A and B; the frame places the intro
and the action in a sentence:

    intros  "and"    A and B went to the park          "both"  both A and B went to the park
            "with"   A went to the park with B         "met"   A met B at the park
    frames  "subordinate"    When <intro>, S gave a cup to
            "coordinate"     <intro>, and (then) S gave a cup to
            "two_sentences"  <intro>. (Later) S gave a cup to
            "third_party"    When <intro>, the teacher asked S to give a cup to
            "main_first"     <intro> when S gave a cup to
            "relative"       <intro>, where S gave a cup to

Any frame may take a fronted phrase ("Yesterday,", "At the bank,"), the action an adverb and a
modal ("decided to give"), and the preposition is "to" or "for" by verb. `HELDOUT_STRUCTURES`
never occur in training (the relative frame entirely, and five other pairs), and neither do
`HELDOUT_VERBS`; `interp.zoo.evaluate` measures IOI on them. Independently, the corpus never
produces one of the templates of `interp.tasks.ioi` (written for real models) or of the two
independent checks (`check_templates`), which are hand-written checks.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from interp.zoo import lexicon as lx

PREDICATES = [  # what A and B did; "were" becomes "was" for one person
    "went to the {P}", "arrived at the {P}", "were walking to the {P}", "got to the {P}",
    "came back from the {P}", "left the {P}", "were working at the {P}", "were waiting at the {P}",
    "met at the {P}", "sat in the {P}", "were cleaning the {P}", "had lunch at the {P}",
    "walked into the {P}", "were shopping at the {P}", "spent the day at the {P}", "stopped by the {P}",
    "visited the {P}", "painted the {P}", "were talking near the {P}", "reached the {P}",
    "were busy at the {P}", "had a long day at the {P}", "were sitting in the {P}",
    "spent the evening at the {P}", "had dinner together at the {P}",
]
MEETINGS = ["met {B} at the {P}", "saw {B} at the {P}", "visited {B} at the {P}", "joined {B} at the {P}",
            "waited for {B} at the {P}", "ran into {B} near the {P}", "called {B} from the {P}"]
CONJUNCTIONS = ["When", "After", "While", "Once", "Since", "Because", "As", "Before", "As soon as", "Just after"]
COORDINATORS = ["and", "and then", "so", "but then", "and later"]
LINKS = ["", "Then ", "Later ", "Afterwards, ", "After that, ", "Eventually ", "Soon ", "In the end, "]
TRAILING = ["when", "after", "because", "until", "before"]  # main clause first: "<intro> when S ..."
AGENTS = ["teacher", "doctor", "farmer", "driver", "baker", "waiter", "student", "child"]
REQUESTS = ["asked {S} to", "told {S} to", "wanted {S} to", "reminded {S} to"]
FRONTED = ["Yesterday,", "Today", "On Monday,", "In the morning,", "Later that day,", "One day,",
           "The other day", "Last week,", "At the {P2},", "That evening,"]
ADVERBS = ["quickly", "later", "happily", "kindly", "carefully", "finally", "then", "soon", "gladly", "secretly"]
MODALS = ["decided to", "wanted to", "had to", "tried to", "promised to", "forgot to"]
# (past, base, preposition)
VERBS = [
    ("gave", "give", "to"), ("handed", "hand", "to"), ("sent", "send", "to"), ("sold", "sell", "to"),
    ("showed", "show", "to"), ("passed", "pass", "to"), ("threw", "throw", "to"), ("brought", "bring", "to"),
    ("offered", "offer", "to"), ("lent", "lend", "to"), ("tossed", "toss", "to"), ("returned", "return", "to"),
    ("mailed", "mail", "to"), ("bought", "buy", "for"), ("made", "make", "for"), ("found", "find", "for"),
    ("got", "get", "for"), ("picked", "pick", "for"), ("kept", "keep", "for"), ("saved", "save", "for"),
]
HELDOUT_VERBS = {"returned", "mailed", "kept"}
FRAMES = ["subordinate", "coordinate", "two_sentences", "third_party", "main_first", "relative"]
INTROS = ["and", "both", "with", "met"]
HELDOUT_STRUCTURES = {("relative", i) for i in INTROS} | {
    ("main_first", "with"), ("main_first", "met"), ("two_sentences", "with"), ("third_party", "met"),
    ("coordinate", "both"),
}
STRUCTURES = [(f, i) for f in FRAMES for i in INTROS]


def structures(split: str) -> list[tuple[str, str]]:
    """The (frame, intro) structures of "train" or "held_out"."""
    return [s for s in STRUCTURES if (s in HELDOUT_STRUCTURES) == (split == "held_out")]


def verbs(split: str) -> list[tuple[str, str, str]]:
    """Verbs of training IOI sentences ("train") or every verb ("all": evaluation draws any)."""
    return [v for v in VERBS if split == "all" or v[0] not in HELDOUT_VERBS]


def singular(predicate: str) -> str:
    return re.sub(r"^were ", "was ", predicate)


def _intro(rng: random.Random, kind: str, a: str, b: str, place: str) -> str:
    if kind == "met":
        return f"{a} " + rng.choice(MEETINGS).format(B=b, P=place)
    if kind == "with":
        pred = rng.choice([p for p in PREDICATES if not p.startswith(("met ", "had dinner together"))])
        return f"{a} {singular(pred.format(P=place))} with {b}"
    pred = rng.choice(PREDICATES).format(P=place)
    return ("both " if kind == "both" else "") + f"{a} and {b} {pred}"


def _action(rng: random.Random, s: str, verb_split: str, base: bool = False) -> str:
    past, infinitive, prep = rng.choice(verbs(verb_split))
    obj = f"{rng.choice(('a', 'the'))} {rng.choice(lx.OBJECTS)}"
    if base:
        return f"{infinitive} {obj} {prep}"
    roll = rng.random()
    if roll < 0.25:
        return f"{s} {rng.choice(MODALS)} {infinitive} {obj} {prep}"
    if roll < 0.5:
        return f"{s} {rng.choice(ADVERBS)} {past} {obj} {prep}"
    return f"{s} {past} {obj} {prep}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


_NAMES = set(lx.MALE_NAMES + lx.FEMALE_NAMES)


def sentence(rng: random.Random, structure: tuple[str, str], a: str, b: str, s: str,
             verb_split: str = "train") -> str:
    """One IOI prompt of `structure` with A, B introduced and S acting, ending before IO."""
    frame, kind = structure
    place = rng.choice(lx.PLACES)
    intro = _intro(rng, kind, a, b, place)
    act = _action(rng, s, verb_split)
    if frame == "subordinate":
        text = f"{rng.choice(CONJUNCTIONS)} {intro}, {act}"
    elif frame == "coordinate":
        text = f"{_cap(intro)}, {rng.choice(COORDINATORS)} {act}"
    elif frame == "two_sentences":
        text = f"{_cap(intro)}. {rng.choice(LINKS)}{act}"
    elif frame == "third_party":
        request = rng.choice(REQUESTS).format(S=s)
        text = (f"{rng.choice(CONJUNCTIONS)} {intro}, the {rng.choice(AGENTS)} {request} "
                + _action(rng, s, verb_split, base=True))
    elif frame == "main_first":
        text = f"{_cap(intro)} {rng.choice(TRAILING)} {act}"
    else:  # relative
        text = f"{_cap(intro)}, where {act}"
    if rng.random() < 0.3:
        front = rng.choice(FRONTED).format(P2=rng.choice([p for p in lx.PLACES if p != place]))
        text = f"{front} {text if text.split()[0] in _NAMES else text[0].lower() + text[1:]}"
    return text


def words() -> list[str]:
    """Every fixed word the grammar can write (for the vocabulary)."""
    texts = (PREDICATES + MEETINGS + CONJUNCTIONS + COORDINATORS + LINKS + TRAILING + AGENTS + REQUESTS
             + FRONTED + ADVERBS + MODALS + [" ".join(v) for v in VERBS] + ["both Both with where the"])
    found = template_words(texts)
    return sorted(found | {w.lower() for w in found} | {w.capitalize() for w in found})


def template_words(texts) -> set[str]:
    """The words of template strings, placeholders ({P}, {name_2}) left out."""
    return {w for text in texts for w in re.findall(r"[A-Za-z]+", re.sub(r"\{[A-Za-z0-9_]+\}", " ", text))}


def draw(rng: random.Random, names: list[str], build) -> tuple[str, str, str]:
    """(prompt, io, s): `build(a, b, s)` for two distinct names, S either one at random, drawn
    again until the prompt is not an evaluation template (`is_eval_template`)."""
    while True:
        a, b = rng.sample(names, 2)
        s, io = (a, b) if rng.random() < 0.5 else (b, a)
        prompt = build(a, b, s)
        if not is_eval_template(prompt):
            return prompt, io, s


CHECKS = ("unseen", "blind")  # template files beside this module, written without this grammar


def check_templates(name: str) -> list[str]:
    """The templates of an independent check ({A} {B} first mentions, {S} the subject, {P} {O}):
    "unseen" (`unseen_ioi.txt`) or "blind" (`blind_ioi.txt`, never read by the grammar's authors)."""
    path = Path(__file__).parent / f"{name}_ioi.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _pattern(template: str, anywhere: bool = False) -> re.Pattern:
    """A pattern matching any filling of `template`; `anywhere`: also after other sentences."""
    body = re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(template)) + "$"
    return re.compile((r"(?:^|.*[.,] )" if anywhere else "^") + body)


def _eval_patterns() -> list[re.Pattern]:
    """The templates of `interp.tasks.ioi` (written for real models) and of the independent checks."""
    from interp.tasks.ioi import TEMPLATES

    tasks = [_pattern(t) for group in TEMPLATES.values() for t in group]
    return tasks + [_pattern(t, anywhere=True) for name in CHECKS for t in check_templates(name)]


EVAL_PATTERNS = _eval_patterns()


def is_eval_template(text: str) -> bool:
    """Whether `text` fills a template kept for evaluation (`interp.tasks.ioi`'s, or an independent
    check's, also after other sentences): the corpus never produces one."""
    return any(p.match(text) for p in EVAL_PATTERNS)


# -- composed introductions --------------------------------------------------------------------
# The frames above introduce A and B in one of four set phrases. `composed` introduces them in
# clauses borrowed from the rest of the corpus, apart or together, in one or two sentences, with
# unrelated sentences around them, so that what marks the answer is only "the name mentioned once".
ONE_NAME = [  # {X} one person, {pron} their pronoun
    "{X} said that {pron} was {adj}", "{X} walked to the {P}", "{X} smiled because {pron} was happy",
    "{X} was {adj}", "{X} flew to {K}", "{X} {pred}", "{X} {phrase}", "{X} is a {w} who {phrase}",
    "{X} stayed home", "{X} lived in the old {P}", "{X} was {adj} that day",
]
TWO_NAMES = [  # {X} then {Y}
    "{X} said that {Y} was {adj}", "{X} {meeting}", "{X} and {Y} {pred2}", "{X} {pred} with {Y}",
    "{X} waited for {Y}", "{X} saw {Y} in the {P}", "{X} {tverb} {Y}", "{X} {tverb} {Y} at the {P}",
    "{X} {activity} with {Y} at the {P}", "{X} {activity} with {Y}",
]
TRANSITIVE = ["helped", "called", "watched", "found", "liked", "visited", "saw", "joined", "met"]
ACTIVITIES = ["worked", "played", "danced", "lived", "had lunch", "had dinner", "sat", "stayed"]
TIMES = ["every day", "every week", "on Monday", "in the morning", "that evening", "that day"]
_TWO_NAME_KINDS = {"{X} {meeting}": "met", "{X} {pred} with {Y}": "with", "{X} and {Y} {pred2}": "and",
                   "{X} {activity} with {Y} at the {P}": "with", "{X} {activity} with {Y}": "with"}
JOINERS = [", and ", ". ", ", while ", " and then ", ". Later ", " because ", ", but "]
LEADS = [". ", ", and ", ", so ", ". Then ", ". Later ", ", and then ", " when ", ". After that, ", ". Soon ",
         ". One morning, ", ". Afterwards ", ". Eventually ", ". That evening, ", ". Finally ", ". One day, "]


def _clause(rng: random.Random, template: str, x: str, y: str = "") -> str:
    male = x in lx.MALE_NAMES
    m, f, cat, pair_phrase = rng.choice(lx.GENDER_PAIRS)
    return template.format(
        X=x, Y=y, pron="he" if male else "she", adj=rng.choice(lx.ADJECTIVES), P=rng.choice(lx.PLACES),
        K=rng.choice(lx.COUNTRY_CAPITALS)[1], pred=singular(rng.choice(PREDICATES)).format(P=rng.choice(lx.PLACES)),
        pred2=rng.choice(PREDICATES).format(P=rng.choice(lx.PLACES)),
        phrase=rng.choice([pair_phrase, *lx.CATEGORY_PHRASES[cat]]), w=m if male else f,
        meeting=rng.choice(MEETINGS).format(B=y, P=rng.choice(lx.PLACES)),
        tverb=rng.choice(TRANSITIVE), activity=rng.choice(ACTIVITIES)) + _time(rng)


def _time(rng: random.Random) -> str:
    """A time expression to end a clause with, three times in ten."""
    return " " + rng.choice(TIMES) if rng.random() < 0.3 else ""


def _lead_frame(lead: str) -> str:
    """The frame a lead into the action makes of an introduction of the frames' kind."""
    return "two_sentences" if lead.startswith(".") else "main_first" if lead == " when " else "coordinate"


def _aside(rng: random.Random) -> str:
    """An unrelated sentence without names, to stand before or after the introduction."""
    subj = rng.choice(lx.FILLER_SUBJECTS)
    return f"{subj.capitalize()} {rng.choice(lx.FILLER_VERBS)} the {rng.choice(lx.OBJECTS)} in the {rng.choice(lx.PLACES)}"


def composed(rng: random.Random, a: str, b: str, s: str, verb_split: str = "train") -> str:
    """An IOI prompt whose introduction of A and B is composed from corpus clauses (see above)."""
    kind = None  # an intro of the frames' own kind keeps its held-out structures held out
    if rng.random() < 0.5:
        template = rng.choice(TWO_NAMES)
        kind = _TWO_NAME_KINDS.get(template)
        intro = _clause(rng, template, a, b)
    elif rng.random() < 0.7:
        intro = _clause(rng, rng.choice(ONE_NAME), a) + rng.choice(JOINERS) + _clause(rng, rng.choice(ONE_NAME), b)
    else:  # "While A was busy, B stayed home"
        intro = (f"{rng.choice(CONJUNCTIONS)} " + _clause(rng, rng.choice(ONE_NAME), a) + ", "
                 + _clause(rng, rng.choice(ONE_NAME), b))
    sentences = [_aside(rng) + "."] if rng.random() < 0.25 else []
    sentences.append(_cap(intro))
    allowed = lambda frame: (frame, kind) not in HELDOUT_STRUCTURES
    leads = [lead for lead in LEADS if allowed(_lead_frame(lead))]
    if rng.random() < 0.25 and allowed("two_sentences"):  # an aside between the introduction and the action
        sentences[-1] += "."
        sentences.append(_aside(rng))
        leads = [lead for lead in LEADS if lead.startswith(".")]
    lead = rng.choice(leads)
    if rng.random() < 0.8 or not allowed("third_party"):
        act = _action(rng, s, verb_split)
    else:
        act = f"the {rng.choice(AGENTS)} {rng.choice(REQUESTS).format(S=s)} {_action(rng, s, verb_split, base=True)}"
    return " ".join(sentences) + lead + (_cap(act) if lead == ". " else act)
