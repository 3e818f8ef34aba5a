#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu; this folder is
# /autograder/source). It installs what grading needs and locks the grader away from the submissions:
#   - bubblewrap, the grader's sandbox (in a container that forbids namespaces it cannot start, and the grader
#     then runs each submission's code as an unprivileged uid of its own: docs/threat-model.md);
#   - a Python of at least @PYTHON_MIN@ (the system's, Ubuntu's python3.X package, or the deadsnakes PPA's);
#   - a virtual environment in @VENV@ with the pinned CPU build of PyTorch and the grader's other packages
#     (the grader itself is not installed there: it runs from this folder, which only root may read).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE="$(cd "$(dirname "$0")" && pwd)"
VENV="${AUTOGRADER_VENV:-@VENV@}"
TORCH_INDEX="${AUTOGRADER_TORCH_INDEX:-@TORCH_INDEX@}"
WANT="@PYTHON_MIN@"
APT_UPDATED=""

apt_install() {
  [ -n "$APT_UPDATED" ] || { apt-get update -qq; APT_UPDATED=1; }
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

fits() {  # a Python of at least $WANT, with venv and ensurepip
  "$1" -c "import sys, venv, ensurepip; sys.exit(sys.version_info < tuple(map(int, '$WANT'.split('.'))))" 2>/dev/null
}

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && fits "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap || echo "setup: bubblewrap could not be installed" >&2
PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
  # Ubuntu 22.04 ships 3.10 as python3 and 3.11 as a package of its own; older releases need deadsnakes.
  apt_install ca-certificates "python$WANT" "python$WANT-venv" ||
    { apt_install software-properties-common && add-apt-repository -y ppa:deadsnakes/ppa && APT_UPDATED="" &&
      apt_install "python$WANT" "python$WANT-venv"; } || true
  PYTHON="$(find_python || true)"
fi
if [ -z "$PYTHON" ] && command -v python3 >/dev/null 2>&1; then  # a python3 that fits but lacks venv
  minor="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  apt_install "python$minor-venv" || true
  PYTHON="$(find_python || true)"
fi
if [ -z "$PYTHON" ]; then
  echo "setup: no Python $WANT or later could be installed; choose a newer base image on Gradescope." >&2
  exit 1
fi
echo "setup: $("$PYTHON" --version) from $PYTHON"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --index-url "$TORCH_INDEX" "@TORCH@"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --extra-index-url "$TORCH_INDEX" \
  -r "$SOURCE/requirements.txt"
# The sandboxed runs use this interpreter and torch: readable by all, writable by root only.
chmod -R a+rX,go-w "$VENV"

# The grader, its answer keys and this folder: root's alone (run_autograder checks again before each run).
chown -R root:root "$SOURCE"
chmod -R go-rwx "$SOURCE"

cd "$SOURCE"
"$VENV/bin/python" -E -s -c "import grader, torch; grader.points_table(); print('setup: the grader imports, torch', torch.__version__)"
