"""Headless Chromium for tests that look at a page as a person would (screenshot + rendered DOM)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
    "--window-size=1400,1600",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: scripts/setup.sh --dev installs it")
    return path


def render(url: str, workdir: Path) -> tuple[str, Path]:
    """The page's DOM after its scripts ran, and a PNG screenshot of it."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile = [f"--user-data-dir={workdir / 'profile'}"]
    dom = subprocess.run(
        [chromium(), *FLAGS, *profile, "--dump-dom", url],
        check=True,
        timeout=180,
        capture_output=True,
        text=True,
    ).stdout
    shot = workdir / "page.png"
    subprocess.run(
        [chromium(), *FLAGS, *profile, f"--screenshot={shot}", url],
        check=True,
        timeout=180,
        capture_output=True,
    )
    return dom, shot


def screenshot(url: str, workdir: Path, height: int = 2000) -> tuple[str, Path]:
    """The page at 1300 px wide (a laptop browser window); the screenshot is kept for a person."""
    flags = [f for f in FLAGS if not f.startswith("--window-size")]
    with mock.patch(__name__ + ".FLAGS", [*flags, f"--window-size=1300,{height}"]):
        dom, shot = render(url, workdir)
    print(f"report screenshot (1300 px wide): {shot}")
    return dom, shot
