"""The quiz (answers.toml [quiz]): q1 and q2 by key, q3 by a rubric of ideas with partial credit."""

from __future__ import annotations

import re

from grader.evidence import Evidence
from grader.feedback import shown, toml_type
from grader.rubrics import MIN_WORDS, Q3_IDEAS, Q3_RUBRIC, read_q3
from grader.scoring import ManualReview, Partial, check
from grader.written import is_placeholder
from reference import Config

Q1_OPTIONS = {"a": "LM head", "b": "decoder layers", "c": "final norm"}
Q1_TEXT = {"a": re.compile(r"lm[\s_-]*head|head", re.I), "b": re.compile(r"decoder|layer", re.I)}
Q1_TEXT["c"] = re.compile(r"final[\s_-]*norm|norm", re.I)
TRUE_WORDS = {"true", "t", "yes", "y"}
FALSE_WORDS = {"false", "f", "no", "n"}


def q1_choice(raw: str) -> str | None:
    """The letter a learner meant: "b", "B", "(b)", "b)", "b) Decoder layers" or the option's text."""
    text = raw.strip().lower()
    letter = re.fullmatch(r"\(?([abc])\s*[).:]?(\s.*)?", text)
    if letter:
        return letter.group(1)
    matches = [key for key, pattern in Q1_TEXT.items() if pattern.search(text)]
    return matches[0] if len(matches) == 1 else None


@check(
    "1.1",
    "quiz.q1",
    4,
    "Quiz 1: what comes after the embeddings",
    "auto_examples/07_skeleton.html",
    visibility="after_due_date",
)
def check_q1(evidence: Evidence) -> str:
    raw = evidence.answer("quiz", "q1")
    assert isinstance(raw, str), f'quiz.q1 should be a letter in quotes, e.g. q1 = "a"; found {toml_type(raw)}.'
    assert raw.strip(), 'quiz.q1 has no answer yet: write "a", "b" or "c".'
    choice = q1_choice(raw)
    assert choice is not None, f'quiz.q1 = {shown(raw)} is not one of "a", "b", "c".'
    assert choice == "b", (
        f"quiz.q1: you chose {choice}) {Q1_OPTIONS[choice]}. After the embeddings come the decoder layers (b); "
        "the final norm and then the LM head come after the last layer."
    )
    return "quiz.q1: right, the decoder layers come after the embeddings."


@check(
    "1.2",
    "quiz.q2",
    4,
    "Quiz 2: does MoE activate every expert?",
    "auto_examples/05_moe.html",
    visibility="after_due_date",
)
def check_q2(evidence: Evidence) -> str:
    raw = evidence.answer("quiz", "q2")
    assert raw != "", "quiz.q2 has no answer yet: write true or false (without quotes)."
    value = raw
    if isinstance(raw, str) and raw.strip().strip(".").lower() in TRUE_WORDS | FALSE_WORDS:
        value = raw.strip().strip(".").lower() in TRUE_WORDS
    assert isinstance(value, bool), f"quiz.q2 should be true or false (no quotes needed); found {shown(raw)}."
    kimi = Config.kimi_k2()
    assert value is False, (
        f"quiz.q2: MoE does not activate every expert. Each token goes to its top {kimi.num_experts_per_tok} of "
        f"{kimi.n_routed_experts} routed experts in Kimi-K2, plus the always-on shared expert; that is why only "
        "a fraction of the parameters run per token. The answer is false."
    )
    return "quiz.q2: right, only the top-k routed experts (and the shared one) run for a token."


@check(
    "1.3",
    "quiz.q3",
    6,
    "Quiz 3: the purpose of the 1/sqrt(d_k) scale (rubric of ideas)",
    "auto_examples/03_attention.html",
    visibility="after_due_date",
)
def check_q3(evidence: Evidence) -> str:
    raw = evidence.answer("quiz", "q3")
    assert isinstance(raw, str), f'quiz.q3 should be a sentence in quotes, q3 = "..."; found {toml_type(raw)}.'
    assert not is_placeholder(raw), "quiz.q3 has no answer yet: explain in a sentence or two what the scale is for."
    reading = read_q3(raw)
    found = list(reading.found)
    total = sum(idea.points for idea in Q3_IDEAS)
    if not reading.sentence:
        raise ManualReview(
            f"quiz.q3: your answer ({reading.words} words) does not read as a sentence, and keywords alone do not "
            f"show the ideas, so a person will read it ({total:g} points pending). Next time, explain in a full "
            f"sentence (at least {MIN_WORDS} words) what the scale is for.",
            Q3_RUBRIC,
            raw,
        )
    if reading.negated is not None:
        raise ManualReview(
            f'quiz.q3: your answer puts a negation near one of the rubric\'s ideas ("{reading.negated}"), which '
            f"keyword matching cannot read reliably, so a person will read it ({total:g} points pending).",
            Q3_RUBRIC,
            raw,
        )
    if not found:
        raise ManualReview(
            "quiz.q3: the rubric could not confirm its ideas in your answer, so a person will read it "
            f"({total:g} points pending).",
            Q3_RUBRIC,
            raw,
        )
    if len(found) < len(Q3_IDEAS):
        missing = [idea.label for idea in Q3_IDEAS if idea not in found]
        raise Partial(
            sum(idea.points for idea in found),
            f"quiz.q3: your answer states {len(found)} of the {len(Q3_IDEAS)} ideas; it does not say that "
            + "; nor that ".join(missing)
            + ".",
        )
    return "quiz.q3: all three ideas are there (the sqrt(d_k) scale, the variance it controls, softmax saturation)."
