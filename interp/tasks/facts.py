"""Factual-recall prompts for any tokenizer: "The capital of France is" → " Paris".

Each fact is (relation, subject, answer); a prompt is the relation's template filled with the
subject. Facts whose answer is not one token after a space are dropped (`fact_prompts` says how
many were kept), so every prompt has a single answer token to follow through the layers.

Example:
    >>> import interp
    >>> from interp.tasks.facts import fact_prompts
    >>> rows = fact_prompts(interp.load("smollm2-135m").tokenizer)
    >>> rows[0]["prompt"], rows[0]["answer"]
    ('The capital of France is', ' Paris')
"""

from __future__ import annotations

TEMPLATES = {
    "capital": "The capital of {} is",
    "language": "The official language of {} is",
    "currency": "The currency used in {} is the",
    "continent": "{} is a country on the continent of",
}

FACTS = {
    "capital": [("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Italy", "Rome"),
                ("Spain", "Madrid"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("China", "Beijing"),
                ("England", "London"), ("Greece", "Athens"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
                ("Turkey", "Ankara"), ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Poland", "Warsaw"),
                ("Ireland", "Dublin"), ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Kenya", "Nairobi"),
                ("Thailand", "Bangkok"), ("Peru", "Lima"), ("Cuba", "Havana"), ("Hungary", "Budapest")],
    "language": [("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("Germany", "German"), ("France", "French"),
                 ("Japan", "Japanese"), ("Italy", "Italian"), ("Russia", "Russian"), ("China", "Chinese"),
                 ("Greece", "Greek"), ("Turkey", "Turkish"), ("Poland", "Polish"), ("Sweden", "Swedish")],
    "currency": [("Japan", "yen"), ("India", "rupee"), ("Mexico", "peso"), ("Russia", "ruble"),
                 ("England", "pound"), ("Germany", "euro"), ("China", "yuan"), ("Switzerland", "franc")],
    "continent": [("Kenya", "Africa"), ("Brazil", "South"), ("France", "Europe"), ("Japan", "Asia"),
                  ("Egypt", "Africa"), ("Germany", "Europe"), ("India", "Asia"), ("Nigeria", "Africa"),
                  ("Italy", "Europe"), ("Vietnam", "Asia"), ("Ghana", "Africa"), ("Norway", "Europe")],
}


def fact_prompts(tokenizer) -> list[dict]:
    """Rows with relation, subject, prompt and answer (one token, leading space), in a fixed order."""
    rows = []
    for relation, facts in FACTS.items():
        for subject, answer in facts:
            if len(tokenizer.encode(" " + answer, add_special_tokens=False)) == 1:
                rows.append({"relation": relation, "subject": subject,
                             "prompt": TEMPLATES[relation].format(subject), "answer": " " + answer})
    return rows
