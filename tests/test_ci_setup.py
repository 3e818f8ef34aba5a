"""``.ci/setup``: what it installs on machines of three kinds, with apt-get, pip and sudo replaced by recorders.

Each run gets a PATH of its own holding only what that machine would have: GitHub's runners (google-chrome and
$CHROMEWEBDRIVER/chromedriver), a Debian machine with chromium and chromedriver, a bare one. ``--grading``
(the grade workflows) never asks for a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$SETUP_LOG"\n'


def machine(tmp_path: Path, tools: list[str]) -> tuple[dict[str, str], Path]:
    """A PATH with the given tools (each a recorder), apt-get, pip's python3, sudo, and the basics."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in [*tools, "apt-get", "python3"]:
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    for basic in ("id", "cat", "env", "true", "basename"):
        os.symlink(shutil.which(basic), bin_dir / basic)
    log = tmp_path / "setup.log"
    log.write_text("")
    env = {
        "PATH": str(bin_dir),
        "SETUP_LOG": str(log),
        "GITHUB_ENV": str(tmp_path / "github.env"),
        "HOME": str(tmp_path),
    }
    return env, log


def setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(REPO / ".ci" / "setup"), *args], env=env, capture_output=True, text=True)


def apt_installs(log: Path) -> list[str]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("apt-get") and " install " in line]
    return [word for line in lines for word in line.split() if not word.startswith("-")][2:]


def test_githubs_runners_use_their_own_chrome_and_driver(tmp_path: Path) -> None:
    env, log = machine(tmp_path, ["bwrap", "google-chrome"])
    drivers = tmp_path / "chromedriver-linux64"
    drivers.mkdir()
    (drivers / "chromedriver").write_text(RECORDER)
    (drivers / "chromedriver").chmod(0o755)
    done = setup(env | {"CHROMEWEBDRIVER": str(drivers)})
    assert done.returncode == 0, done.stderr
    assert apt_installs(log) == []
    assert (tmp_path / "github.env").read_text() == (
        f"CHROME_BIN={tmp_path}/bin/google-chrome\nCHROMEDRIVER={drivers}/chromedriver\n"
    )
    assert "python3 -m pip install --quiet --disable-pip-version-check nox>=2024.10" in log.read_text()


def test_a_debian_machine_with_chromium_installs_nothing_more(tmp_path: Path) -> None:
    env, log = machine(tmp_path, ["bwrap", "chromium", "chromedriver"])
    assert setup(env).returncode == 0
    assert apt_installs(log) == []
    assert (
        tmp_path / "github.env"
    ).read_text() == f"CHROME_BIN={tmp_path}/bin/chromium\nCHROMEDRIVER={tmp_path}/bin/chromedriver\n"


@pytest.mark.parametrize(
    ("args", "wanted"), [((), ["bubblewrap", "chromium", "chromium-driver"]), (("--grading",), ["bubblewrap"])]
)
def test_a_bare_machine_gets_from_apt_what_its_mode_needs(
    tmp_path: Path, args: tuple[str, ...], wanted: list[str]
) -> None:
    env, log = machine(tmp_path, [])
    assert setup(env, *args).returncode == 0
    assert apt_installs(log) == wanted


def test_grading_mode_never_looks_for_a_browser_and_a_wrong_option_is_refused(tmp_path: Path) -> None:
    env, log = machine(tmp_path, ["bwrap"])
    assert setup(env, "--grading").returncode == 0
    assert apt_installs(log) == [] and not (tmp_path / "github.env").exists()
    wrong = setup(env, "--grade")
    assert (wrong.returncode, wrong.stderr) == (2, "usage: bash .ci/setup [--grading]\n")
