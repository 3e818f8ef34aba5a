"""Every pair of submissions compared with copydetect's MOSS-style winnowing, the boilerplate discounted.

copydetect (after Schleimer, Wilkerson and Aiken's *Winnowing*, SIGMOD 2003) tokenizes each document with
Pygments, replaces names by ``V``/``F``/``O`` and strings by ``S``, drops comments and whitespace, and
fingerprints every k-gram of what is left (window 1; see ``settings``). For a pair (a, b), ``compare_files``
finds the fingerprints they share and returns the shared regions, and for each side the share of its own
compared tokens that lie in them: ``similarity_a`` is the fraction of a's code (the boilerplate left out) also
found in b.

Boilerplate is removed here rather than by copydetect's ``boilerplate=`` argument: copydetect 0.5.0 removes it
with ``numpy.intersect1d(..., assume_unique=True)`` on a list that holds a repeated k-gram once per occurrence,
and so also drops every repeat of a line that appears twice in a submission (three ``nn.Linear`` lines in a row
do), even when the template does not hold it. Here the template's k-gram hashes are subtracted as a set and
the covered tokens counted again with copydetect's own ``get_token_coverage``.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect import __version__ as copydetect_version
from copydetect.utils import get_token_coverage

from .settings import MIN_OVERLAP, NOISE_TOKENS, THRESHOLD, WINDOW
from .texts import Corpus

ENGINE = f"copydetect {copydetect_version}"


@dataclass
class Pair:
    """Two submissions (ids in order, a < b), how much of each one's code the other holds, and the verdict.

    slices_a, slices_b: (2, N) starts and ends of the shared regions in each document's text, kept for flagged
    pairs only (the HTML report highlights them).
    """

    a: str
    b: str
    similarity_a: float
    similarity_b: float
    token_overlap: int
    flagged: bool
    slices_a: np.ndarray | None = None
    slices_b: np.ndarray | None = None

    @property
    def top(self) -> float:
        """The larger share: how much of the more-copied side the other holds."""
        return max(self.similarity_a, self.similarity_b)


@dataclass
class Comparison:
    """The outcome: every pair (most similar first), each document's compared tokens, and the settings used."""

    corpus: Corpus
    pairs: list[Pair]
    tokens: dict[str, int]
    threshold: float
    min_overlap: int
    noise: int
    engine: str = ENGINE

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]


def fingerprint(text: str, noise: int, boilerplate: frozenset[int] = frozenset()) -> CodeFingerprint:
    """copydetect's fingerprint of Python source given as text (it opens no file), minus the boilerplate hashes."""
    fp = CodeFingerprint("submission.py", noise, WINDOW, language="python", fp=io.StringIO(text))
    if boilerplate:
        fp.hashes = fp.hashes - boilerplate
        fp.hash_idx = {h: idx for h, idx in fp.hash_idx.items() if h not in boilerplate}
        fp.token_coverage = get_token_coverage(fp.hash_idx, noise, len(fp.filtered_code))
    return fp


def boilerplate_hashes(texts: dict[str, str], noise: int) -> frozenset[int]:
    """Every k-gram hash of the boilerplate texts."""
    return frozenset().union(*(fingerprint(text, noise).hashes for text in texts.values()))


def compare(
    corpus: Corpus, *, threshold: float = THRESHOLD, min_overlap: int = MIN_OVERLAP, noise: int = NOISE_TOKENS
) -> Comparison:
    """Compare every pair of the corpus's documents; flag a pair whose larger share reaches ``threshold`` with at
    least ``min_overlap`` tokens in common. Nothing here reads a file or changes a score."""
    skip = boilerplate_hashes(corpus.boilerplate, noise)
    docs = sorted(corpus.documents, key=lambda d: d.student)
    prints = {d.student: fingerprint(d.text, noise, skip) for d in docs}
    pairs = []
    for da, db in itertools.combinations(docs, 2):
        overlap, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[da.student], prints[db.student])
        pair = Pair(da.student, db.student, float(sim_a), float(sim_b), int(overlap), False)
        pair.flagged = pair.top >= threshold and pair.token_overlap >= min_overlap
        if pair.flagged:
            pair.slices_a, pair.slices_b = slices_a, slices_b
        pairs.append(pair)
    pairs.sort(key=lambda p: (-p.top, p.a, p.b))
    tokens = {s: int(fp.token_coverage) for s, fp in prints.items()}
    return Comparison(corpus, pairs, tokens, threshold, min_overlap, noise)
