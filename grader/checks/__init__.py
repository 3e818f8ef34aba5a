"""The grader's checks, one pytest module per topic (``check_*.py``; see ``grader.scoring``).

pytest collects them with the grader's own configuration; ``MODULES`` lets ``grader.points_table`` read
their metadata without running pytest.
"""

from __future__ import annotations

from . import check_layer, check_mask, check_mla, check_model, check_params, check_quiz, check_weights

MODULES = (check_quiz, check_mask, check_params, check_model, check_layer, check_weights, check_mla)
