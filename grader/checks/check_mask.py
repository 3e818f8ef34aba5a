"""The mathematical task's 4x4 causal mask (answers.toml [math] causal_mask), in any faithful convention.

Accepted in full: an additive mask (-inf strictly above the diagonal, the same finite number across each
row's kept entries: 0 as in the docs, or the sheet's 1, since adding a constant to a row of scores leaves
the softmax unchanged), a boolean keep-mask (1 on and below the diagonal), or PyTorch's boolean
"masked" convention (1 strictly above). Half credit when the diagonal is masked too.
"""

from __future__ import annotations

import math
from typing import Any

from grader.evidence import Evidence
from grader.feedback import matrix, shown, toml_type
from grader.scoring import Partial, check
from reference import causal_mask

SIZE = 4
NEG_INF_WORDS = {"-inf", "-infinity", "−inf", "-∞", "−∞", "-math.inf", "float('-inf')", 'float("-inf")'}


def entry_value(value: Any, where: str) -> float:
    """A mask entry as a float: numbers, booleans and strings like "-inf" or "0"."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text in NEG_INF_WORDS:
            return -math.inf
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isnan(number):
            return number
    raise AssertionError(f'math.causal_mask{where} = {shown(value)} is neither a number nor "-inf".')


def read_mask(raw: Any) -> list[list[float]]:
    """The learner's mask as 4 rows of 4 floats, or AssertionError saying what is wrong with its form."""
    assert isinstance(raw, list), f"math.causal_mask should be an array of {SIZE} rows; found {toml_type(raw)}."
    assert raw, f"math.causal_mask is empty: write the {SIZE}x{SIZE} mask as {SIZE} rows of {SIZE} entries."
    assert len(raw) == SIZE, (
        f"math.causal_mask should have {SIZE} rows (a sequence of length {SIZE}); found {len(raw)}."
    )
    for i, row in enumerate(raw):
        assert isinstance(row, list) and len(row) == SIZE, (
            f"math.causal_mask row {i} should be an array of {SIZE} entries; found {shown(row)}."
        )
    return [[entry_value(x, f"[{i}][{j}]") for j, x in enumerate(row)] for i, row in enumerate(raw)]


def additive(rows: list[list[float]], keep: set[tuple[int, int]]) -> bool:
    """-inf exactly off ``keep``; within each row the kept entries are one finite number."""
    for i, row in enumerate(rows):
        kept = {row[j] for j in range(SIZE) if (i, j) in keep}
        dropped = [row[j] for j in range(SIZE) if (i, j) not in keep]
        if any(x != -math.inf for x in dropped) or len(kept) > 1 or any(math.isinf(x) for x in kept):
            return False
    return True


def boolean(rows: list[list[float]], ones: set[tuple[int, int]]) -> bool:
    """1 exactly on ``ones``, 0 elsewhere."""
    return all(rows[i][j] == (1.0 if (i, j) in ones else 0.0) for i in range(SIZE) for j in range(SIZE))


@check(
    "2.1",
    "math.causal_mask",
    6,
    "Mathematical task: the 4x4 causal mask",
    "auto_examples/03_attention.html",
    visibility="after_due_date",
)
def check_causal_mask(evidence: Evidence) -> str:
    rows = read_mask(evidence.answer("math", "causal_mask"))
    keep = {(i, j) for i, j in causal_mask(SIZE, kind="bool").nonzero().tolist()}
    everything = {(i, j) for i in range(SIZE) for j in range(SIZE)}
    strictly_below = {(i, j) for i, j in keep if j < i}
    expected = matrix(causal_mask(SIZE, kind="additive").tolist())
    if additive(rows, keep):
        return "math.causal_mask: right (additive form: the kept scores shifted alike, -inf above the diagonal)."
    if boolean(rows, keep):
        return "math.causal_mask: right (boolean keep-mask: 1 where a query may attend)."
    if boolean(rows, everything - keep):
        return "math.causal_mask: right (PyTorch's boolean convention: True marks the masked positions)."
    if additive(rows, strictly_below) or boolean(rows, strictly_below) or boolean(rows, everything - strictly_below):
        raise Partial(
            3,
            f"math.causal_mask {matrix(rows)} masks the diagonal too. Each token attends to itself: the sheet's "
            f'"1s below the diagonal" means on and below. With the diagonal masked, row 0 masks everything and its '
            f"softmax is NaN. Expected {expected} (or 1 on and below the diagonal as a boolean keep-mask).",
        )
    transposed = [[rows[j][i] for j in range(SIZE)] for i in range(SIZE)]
    if additive(transposed, keep) or boolean(transposed, keep):
        raise AssertionError(
            f"math.causal_mask {matrix(rows)} is transposed: row i is query i, and it may see keys 0..i "
            f"(on and below the diagonal), never the keys after it. Expected {expected}."
        )
    raise AssertionError(
        f"math.causal_mask {matrix(rows)} is not a causal mask. Expected {expected}: 0 where query i may attend "
        "to key j (j <= i), -inf above the diagonal; or as booleans, 1 on and below the diagonal and 0 above."
    )
