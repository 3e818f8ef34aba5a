"""What grading leaves behind in the output folder (``--out``, by default ``reports/``), and reads back.

- ``database``: the gradebook database ``gradebook.sqlite``, the record of truth: every run, every attempt,
  every score a person entered, every late penalty; committed submission by submission;
- ``gradebook``: the class it holds (each student's latest attempt, manual scores applied), and opening an
  output folder's gradebook (migrating an earlier grader's ``gradebook.json``);
- ``files``: the report files, exports of the database, written at the end of every run;
- ``merge``: ``python -m grader merge``, shard databases into one class;
- ``lms``: ``python -m grader export``, the class for an LMS (Canvas, or a roster-joined CSV).

Layout under the output folder::

    gradebook.sqlite     the database (see grader.reports.database for its tables and views)
    gradebook.csv        one row per student and check (and written item): score, max, status, message
    gradebook.json       the same, nested by student, with totals, run diagnostics, seed and isolation
    scores.csv           one row per student: automatic, written and total points, the run's seed and time
                         (with a late policy: submission time and its source, penalty, final score)
    junit.xml            one test suite per student, one test case per check
    summary.md           the class at a glance (also appended to $GITHUB_STEP_SUMMARY when set), with the
                         similarity report's flagged pairs when similarity.json is in the folder
    manual-review.md     what is waiting for a person, with rubrics and answers
    manual-template.toml a scores file to fill in and pass back with --manual
    <id>/results.json    Gradescope's autograder format
    <id>/feedback.md     the learner's feedback
"""

from __future__ import annotations

from .database import FILENAME, Gradebook, RunInfo
from .files import export_lock, write_all
from .gradebook import class_results, export, grader_identity, open_class

__all__ = [
    "FILENAME",
    "Gradebook",
    "RunInfo",
    "class_results",
    "export",
    "export_lock",
    "grader_identity",
    "open_class",
    "write_all",
]
