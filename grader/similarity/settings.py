"""The similarity report's defaults and output names, declared once (the CLI, the reports and the docs read them).

Tokens are copydetect's: characters of the *filtered* code, in which every name becomes ``V``, every function
name ``F``, every class name ``O``, every string ``S``, and comments and whitespace are dropped (``self``,
keywords, numbers and operators stay). So renaming variables or reformatting changes nothing, and a line such as
``q = nn.Linear(d, d, bias=False)`` is the 18 tokens ``V=V.V(V,V,V=False)``.

Why these defaults (the calibration is pinned by tests/test_similarity.py, and the instructors' page
*Academic integrity* shows it computed on the kit's own examples):

- ``NOISE_TOKENS = 25``: copydetect's default k-gram length. Shorter matches are idioms every solution of this
  lesson shares (a ``nn.Linear`` line, a ``.view(...).transpose(1, 2)``).
- The winnowing window is 1 (copydetect's default, its guarantee threshold equal to the noise threshold): every
  k-gram is a fingerprint. This is MOSS's algorithm without the sampling that a larger window does to save time,
  which a class of 200 does not need, and it keeps the numbers identical from run to run (copydetect hashes with
  Python's ``hash()``, salted per process, so a larger window would select different fingerprints each run).
- ``THRESHOLD = 0.7``: a pair is flagged when at least 70% of either submission's own code (the template's left
  out) is also found in the other. A copy with renamed variables and reordered functions scores above 0.9;
  correct solutions written independently share up to about half their code on this tightly specified task
  (four projections, a SwiGLU MLP, the same reshapes). 0.7 sits between the two: a copy is still flagged after
  a quarter of it was rewritten, and the idioms of honest work are not.
- ``MIN_OVERLAP = 200`` tokens (about ten lines of code): below that a high share means only that two nearly
  empty submissions filled in the same few lines of the template (one ``RMSNorm``), which is no evidence.
"""

from __future__ import annotations

NOISE_TOKENS = 25
WINDOW = 1
THRESHOLD = 0.7
MIN_OVERLAP = 200

DEFAULT_ROOT = "submissions"
DEFAULT_TEMPLATE = "submissions/_template"
JSON_FILE = "similarity.json"
HTML_FILE = "similarity.html"
MARKDOWN_FILE = "similarity.md"
FORMAT_VERSION = 1
