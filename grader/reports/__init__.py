"""What grading leaves behind in the output folder (``--out``, by default ``reports/``), and reads back.

- ``files``: the report files, written by the grader alone after every run;
- ``gradebook``: the class record across runs: the students graded now replace their earlier rows, the
  others keep theirs (``--fresh`` starts anew).

Layout under the output folder::

    gradebook.csv        one row per student and check (and written item): score, max, status, message
    gradebook.json       the same, nested by student, with totals, run diagnostics, seed and isolation
    scores.csv           one row per student: automatic, written and total points, the run's seed and time
    junit.xml            one test suite per student, one test case per check
    summary.md           the class at a glance (also appended to $GITHUB_STEP_SUMMARY when set)
    manual-review.md     what is waiting for a person, with rubrics and answers
    manual-template.toml a scores file to fill in and pass back with --manual
    <id>/results.json    Gradescope's autograder format
    <id>/feedback.md     the learner's feedback
"""

from __future__ import annotations

from .files import write_all
from .gradebook import earlier_results, merge_class

__all__ = ["earlier_results", "merge_class", "write_all"]
