"""Code Task 3: ``lesson_total`` and the parameter-count contract.

``lesson_total`` must equal the count of the learner's own model for the lesson config (consistency) and
the closed form of the architecture the docs describe, ``reference.count_parameters(Config.lesson())``
(correctness); the two are separate checks, so a model that differs a little still earns the first.
The contract check counts the learner's model on configs drawn afresh each run and compares with the
same closed form, so no number can be hard-coded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from grader.draws import lesson_fields, reference_config
from grader.evidence import Evidence
from grader.feedback import config_call, number, shown, toml_type
from grader.scoring import check
from reference import Config, count_parameters

ARCHITECTURE = (
    "GQA attention (q, k, v, o projections, K/V with num_kv_heads heads), a SwiGLU MLP (gate, up, down), "
    "two RMSNorms per layer and a final one, an untied LM head, no biases"
)


def lesson_total(evidence: Evidence) -> int:
    """The learner's ``[params] lesson_total`` as an int (TOML int, integral float, or "6,000,000,000")."""
    raw = evidence.answer("params", "lesson_total")
    if isinstance(raw, str):
        digits = raw.strip().replace(",", "").replace("_", "").replace(" ", "")
        assert digits.isdigit(), f"params.lesson_total should be a whole number; found {shown(raw)}."
        return int(digits)
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    assert isinstance(raw, int) and not isinstance(raw, bool), (
        f"params.lesson_total should be a whole number, e.g. lesson_total = 1234567; found {toml_type(raw)}."
    )
    return raw


def variants(cfg: Config) -> dict[str, int]:
    """Counts of common slips on the same config, for a hint in the feedback."""
    return {
        "tied embeddings (lm_head sharing the embedding matrix)": count_parameters(
            dataclasses.replace(cfg, tie_word_embeddings=True)
        ),
        "full multi-head K/V (num_kv_heads = num_heads, no GQA)": count_parameters(
            dataclasses.replace(cfg, num_kv_heads=cfg.num_heads)
        ),
    }


def hint(observed: int, cfg: Config) -> str:
    """' It equals the count with X.' when the number matches a known slip, else ''."""
    for label, count in variants(cfg).items():
        if observed == count:
            return f" It equals the count with {label}."
    return ""


@check(
    "3.1",
    "params.lesson_total_own_model",
    4,
    "lesson_total equals your own model's parameter count for the lesson config",
    "auto_examples/08_configs.html",
)
def check_lesson_total_own_model(evidence: Evidence) -> str:
    claimed = lesson_total(evidence)
    doing = f"Counting the parameters of your SimpleKimiK2({config_call(lesson_fields())}) on the meta device"
    counted = evidence.observe("config", "lesson_count", doing)["count"]
    assert claimed == counted, (
        f"params.lesson_total = {number(claimed)}, but your SimpleKimiK2({config_call(lesson_fields())}) has "
        f"{number(counted)} parameters (sum(p.numel() for p in model.parameters()), counted on the meta device)."
    )
    return f"params.lesson_total: {number(claimed)} is your model's count for the lesson config."


@check(
    "3.2",
    "params.lesson_total_reference",
    4,
    "lesson_total equals the closed-form count of the lesson architecture",
    "auto_examples/08_configs.html",
    visibility="after_due_date",
)
def check_lesson_total_reference(evidence: Evidence) -> str:
    claimed = lesson_total(evidence)
    lesson = Config.lesson()
    expected = count_parameters(lesson)
    assert claimed == expected, (
        f"params.lesson_total = {number(claimed)}; the lesson architecture ({ARCHITECTURE}) with "
        f"{config_call(lesson_fields())} has {number(expected)} parameters ({claimed - expected:+,} off)."
        f"{hint(claimed, lesson)}"
    )
    return f"params.lesson_total: {number(claimed)} is the lesson architecture's count."


@check(
    "3.3",
    "params.contract",
    6,
    "Your model's parameter count follows the lesson architecture on configs drawn at random",
    "auto_examples/08_configs.html",
)
def check_contract(evidence: Evidence) -> str:
    configs: list[dict[str, Any]] = evidence.draws.contract_configs
    doing = "Counting the parameters of your SimpleKimiK2 for " + " and ".join(config_call(c) for c in configs)
    counts = evidence.observe("config", "contract_counts", doing)["counts"]
    wrong = []
    for fields, counted in zip(configs, counts, strict=True):
        cfg = reference_config(fields)
        expected = count_parameters(cfg)
        if counted != expected:
            wrong.append(
                f"SimpleKimiK2({config_call(fields)}) has {number(counted)} parameters, expected "
                f"{number(expected)} ({counted - expected:+,}).{hint(counted, cfg)}"
            )
    assert not wrong, " ".join(wrong) + f" The lesson architecture: {ARCHITECTURE}."
    return f"params.contract: your model's count matches the lesson architecture on {len(configs)} random configs."
