"""Rubrics, the answer keys a person or a matcher scores by: quiz question 3's ideas, and the written work's.

Quiz 3's rubric is a list of ideas, each recognised by a few phrasings; an answer earns the points of the
ideas it states. Keyword matching is kept conservative (``read_q3``): an answer that is not a sentence, or
that puts a negation just before an idea ("the scale does not control the variance", "softmax never
saturates"), goes to a person instead, and a wrong idea ("the weights sum to one") earns nothing by
itself. A negated problem in a result clause ("so the softmax does not saturate") is what the scale is
for, and counts. ``WRITTEN_RUBRICS`` says what a person looks for in each piece of written work
(``grader.written``). Only the grader's own process reads this module (the sandboxed probe never sees it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Idea:
    """One idea of a rubric: what it is, its points, and phrasings that show it."""

    label: str
    points: float
    pattern: re.Pattern[str]


Q3_IDEAS = (
    Idea(
        "the scores are divided by sqrt(d_k), the square root of the key/head dimension",
        2.0,
        re.compile(r"sqrt|√|square[\s-]*root|\bd_?\{?k\}?\b|head[\s_-]*dim|key[\s_-]*dim|dimension", re.I),
    ),
    Idea(
        "without it the dot products grow with d_k (their variance is about d_k); the scale keeps it near 1",
        2.0,
        re.compile(
            r"varian|magnitude|\bstd\b|standard\s+deviation|grow|large|big|huge|blow|explod|unit\s+var|"
            r"order\s+(of\s+)?(1|one)|around\s+(1|one)|~\s*1",
            re.I,
        ),
    ),
    Idea(
        "large scores saturate the softmax (nearly one-hot), so gradients vanish and training is unstable",
        2.0,
        re.compile(
            r"saturat|gradient|peak|spik|one[\s-]*hot|argmax|sharp|extreme|vanish|stabl|stabil|flat|tiny",
            re.I,
        ),
    ),
)

# Right about softmax, wrong about the scale: matched text is removed before the ideas are looked for.
Q3_WRONG = re.compile(
    r"sums?\s+to\s+(1|one)|add\s+up\s+to\s+(1|one)|probabilit\w*|normali[sz]\w*\s+(the\s+)?"
    r"(attention\s+)?(weights|scores|probabilities|rows)",
    re.I,
)
NEGATION = re.compile(r"\b(not|never|no|none|nothing|without|neither|nor|cannot)\b|n't\b", re.I)
NEGATION_REACH = 3  # words before an idea's phrasing that a negation may stand in
CLAUSE_BREAK = re.compile(r"[,;:.!?()]|\b(?=(?:so|and|but|because|which|while|whereas|otherwise)\b)", re.I)
RESULT_CLAUSE = re.compile(r"\s*(so|so\s+that|in\s+order\s+to|to|which)\b", re.I)
PROBLEM = re.compile(r"saturat|vanish|grow|large|big|huge|blow|explod|peak|spik|one[\s-]*hot|sharp|extreme", re.I)
MIN_WORDS = 8
VERB = re.compile(
    r"\b(is|are|was|were|be|been|being|has|have|had|does|do|did|can|could|will|would|should|may|might|must|"
    r"keeps?|makes?|stops?|prevents?|avoids?|helps?|ensures?|controls?|scales?|divides?|reduces?|grows?|gets?|"
    r"becomes?|saturates?|vanish(es)?|explodes?|blows?|limits?|\w+(ed|ing|i[sz]es))\b",
    re.I,
)


@dataclass(frozen=True)
class Q3Reading:
    """What the rubric can read in a quiz 3 answer.

    found: the ideas stated; negated: phrasings with a negation just before them (None if there are none);
    words: the answer's word count; sentence: whether it reads as a sentence (enough words and a verb).
    """

    found: tuple[Idea, ...]
    negated: str | None
    words: int
    sentence: bool


def _negated(clause: str) -> str | None:
    """The first idea phrasing in ``clause`` with a negation among the few words before it, or None."""
    for idea in Q3_IDEAS:
        for match in idea.pattern.finditer(clause):
            before = clause[: match.start()].split()[-NEGATION_REACH:]
            if not any(NEGATION.search(word) for word in before):
                continue
            excused = RESULT_CLAUSE.match(clause) and PROBLEM.match(clause, match.start())
            if not excused:
                end = clause.find(" ", match.end())
                return " ".join(before) + " " + clause[match.start() : end if end > 0 else len(clause)]
    return None


def read_q3(answer: str) -> Q3Reading:
    """The ideas an answer states, once wrong ideas are removed, and whether it can be trusted to a matcher."""
    text = Q3_WRONG.sub(" ", answer)
    clauses = [c for c in CLAUSE_BREAK.split(text) if c and c.strip()]
    negated = next((hit for hit in map(_negated, clauses) if hit), None)
    words = len(answer.split())
    return Q3Reading(
        tuple(idea for idea in Q3_IDEAS if idea.pattern.search(text)),
        negated,
        words,
        words >= MIN_WORDS and VERB.search(answer) is not None,
    )


Q3_RUBRIC = "; ".join(f"{idea.label} ({idea.points:g} points)" for idea in Q3_IDEAS)

# What a person looks for in each piece of written work (its key and title: grader.written.WRITTEN).
WRITTEN_RUBRICS = {
    "theory.components": (
        "Names embeddings, attention, MLP/MoE, norms and LM head with each one's role; RMSNorm over LayerNorm "
        "mainly for compute (no mean, no bias), with stability credited to the pre-norm placement."
    ),
    "theory.rmsnorm": ("x / sqrt(mean(x^2) + eps) * g; no re-centring and no bias, so cheaper at similar quality."),
    "theory.rope": (
        "Rotates query/key channel pairs by position-proportional angles, so q.k depends only on the "
        "distance m - n; contrast with absolute embeddings added to the input."
    ),
    "theory.gqa": (
        "Query heads share K/V heads in groups; the KV cache shrinks by num_heads / num_kv_heads. "
        "Nothing is low-rank in GQA: credit an answer that says the sheet confuses it with MLA."
    ),
    "theory.moe": (
        "A router sends each token to its top-k experts (plus the shared one), so compute per token follows "
        "the activated, not the total, parameters; load balancing keeps experts evenly used (aux loss, or "
        "DeepSeek-V3's bias update)."
    ),
    "theory.attention_formula": ("softmax(Q K^T / sqrt(d_k) + M) V with M = 0 on and below the diagonal, -inf above."),
    "advanced.mla": (
        "K and V are rebuilt from one low-rank latent per token (plus a shared RoPE key) that is all the "
        "cache holds; GQA instead shares full K/V heads. Decoupled RoPE, absorbed projections."
    ),
    "diagram": (
        "Embedding, N decoder layers (norm, attention, residual add, norm, MLP/MoE, residual add), final "
        "norm, LM head; residual connections labelled; RoPE shown applied to queries and keys inside attention."
    ),
}
