"""Embedding-space analysis: neighbours, analogies, directions and linear probes.

- `neighbors`, `analogy`: cosine search over W_E rows ("embed") or W_U columns ("unembed"),
  among word tokens only by default (see `interp.embeddings.vectors`).
- `evaluate_analogies`: accuracy on a `questions-words` file, per section, skips listed
  (Mikolov et al., 2013); `questions_words_path()` finds the standard file shipped by gensim.
- `pair_direction`, `project`: a diff-of-means direction from word pairs and projections on it.
- `probe_words`, `probe_residual`: logistic-regression probes with held-out accuracy, on static
  vectors or on the residual stream after every layer.
- `evaluate_similarity`: Spearman correlation of cosines with human word-similarity ratings
  (WordSim-353, SimLex-999; `similarity_path` finds gensim's copies).

"embed" is the checkpoint's own input embedding (`raw_embedding`), not the bridge's row-centred
W_E (`centre=True` gives that copy; see `interp.embeddings.vectors`).

Embedding analyses work on any model with an input embedding (e.g. all-MiniLM-L6-v2);
unembedding analyses refuse an untrained unembedding unless `allow_untrained=True`.

Example:
    >>> import interp
    >>> from interp.embeddings import pair_direction, project
    >>> from interp.zoo.lexicon import gender_pairs
    >>> model = interp.load("zoo-4l")
    >>> d = pair_direction(model, gender_pairs("train"), labels=("male", "female"))
    >>> project(model, ["duke", "duchess"], d)["side"].tolist()
    ['male', 'female']
"""

from interp.embeddings.analogies import (METHODS, AnalogyScores, Question, evaluate_analogies, parse_questions,
                                         questions_words_path, read_questions)
from interp.embeddings.directions import Direction, pair_direction, project
from interp.embeddings.probes import Probe, probe_residual, probe_words
from interp.embeddings.similarity import (Similarity, evaluate_similarity, parse_word_pairs, read_word_pairs,
                                          similarity_path)
from interp.embeddings.vectors import analogy, neighbors, raw_embedding, vectors, word_mask, word_token

__all__ = ["neighbors", "analogy", "evaluate_analogies", "parse_questions", "read_questions",
           "questions_words_path", "pair_direction", "project", "probe_words", "probe_residual",
           "vectors", "raw_embedding", "word_token", "word_mask", "evaluate_similarity", "parse_word_pairs",
           "read_word_pairs", "similarity_path", "Direction", "Probe", "AnalogyScores", "Question", "Similarity"]
