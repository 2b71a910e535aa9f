"""Every `synthdiv …` command line in the README and docs parses: the command exists and its
options are real (checked with `--help` appended, so nothing runs). A renamed command or option
then breaks this test, not a reader's first try."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthdiv.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?synthdiv(?= )(.*)$")


def command_lines() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        in_code = False
        text = re.sub(r"\\\n\s*", " ", doc.read_text())  # join continued lines
        for line in text.splitlines():
            if line.strip().startswith("```"):
                in_code = not in_code
                continue
            match = COMMAND.match(line) if in_code else None
            if match:
                args = match.group(1).split("#")[0].split("&&")[0].split("|")[0].strip()
                found.append((f"{doc.name}: synthdiv {args}", args))
    return found


LINES = command_lines()


def test_the_docs_show_commands():
    assert len(LINES) >= 20  # the scan itself works


@pytest.mark.parametrize(("where", "args"), LINES, ids=[w for w, _ in LINES])
def test_documented_command_parses(where, args):
    result = CliRunner().invoke(app, [*shlex.split(args), "--help"])
    assert result.exit_code == 0, f"{where}\n{result.output}"


def test_the_repo_stands_alone():
    """Docs, code and configs cite docs/method.md, never a file outside the repository."""
    sources = [*DOCS, *ROOT.glob("synthdiv/**/*.py"), *ROOT.glob("examples/*.yaml")]
    outside = [
        str(p.relative_to(ROOT))
        for p in sources
        if any(ref in p.read_text() for ref in ("METHOD.md", "ENV.md", "DESIGN.md", "../shared"))
    ]
    assert not outside


def test_ci_runs_the_readme_test_command_verbatim():
    """`.ci/run` is the README's second command: a step added to one and not the other would let CI
    pass on something a user's run fails, or the reverse."""
    readme = (ROOT / "README.md").read_text().splitlines()
    (command,) = [line for line in readme if line.startswith("bash scripts/setup.sh --dev")]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci[-1] == command
    assert "ruff check" in command and "pytest" in command
