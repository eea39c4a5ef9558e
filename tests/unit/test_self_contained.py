"""A clone on its own builds, tests and runs: nothing in the project reads a folder beside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spellings of a path out of the repository into the workspace's shared folder.
# (Spelled from parts, so this file does not contain what it looks for.)
OUTSIDE = ("/".join(("..", "shared")), " / ".join(('"shared"', '"reference"')))


def test_no_tracked_file_reads_outside_the_repository() -> None:
    # Given every file git tracks
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    # When each text file is searched for a path that leaves the repository
    offenders = [
        (name, spelling)
        for name in tracked
        if not name.startswith("vendor/") and (ROOT / name).is_file()
        for spelling in OUTSIDE
        if spelling in (ROOT / name).read_text(errors="ignore")
    ]
    # Then there is none
    assert offenders == []


def test_the_vendored_openai_document_carries_its_licence_and_source() -> None:
    folder = ROOT / "vendor" / "openai-openapi"
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "f85dbe2" in (folder / "README.md").read_text()
    assert (folder / "openapi.yaml").read_text().startswith("openapi: 3.1")
