"""Prompt families as versioned template files, plus the styles and personas they draw from.

A family lives in ``synthdiv/prompts/generate/<family>.v<N>.yaml`` (``system`` + ``user`` text
with ``$placeholders``); the highest version is used unless a config pins one. Users add families
or versions by pointing ``prompt_dir`` at a directory of files in the same format. The fixed
instructions sit in the system message so engines can reuse the shared prompt prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import yaml

from synthdiv.errors import SynthdivError

FILE_RE = re.compile(r"^(?P<family>[a-z0-9_]+)\.v(?P<version>\d+)\.yaml$")


class PromptError(SynthdivError, ValueError):
    """Unknown family/version or a malformed template file."""


@dataclass(frozen=True)
class PromptTemplate:
    family: str
    version: int
    description: str
    system: str
    user: str
    uses_style: bool
    uses_personas: bool
    multi_topic: bool
    extra_fields: tuple[str, ...]
    source: str

    @property
    def id(self) -> str:
        return f"generate/{self.family}@v{self.version}"

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every ``$placeholder`` filled; a missing value is an error."""
        try:
            return [
                {"role": "system", "content": Template(self.system).substitute(values).strip()},
                {"role": "user", "content": Template(self.user).substitute(values).strip()},
            ]
        except KeyError as err:
            raise PromptError(f"{self.id}: no value for placeholder {err}") from None


def builtin_prompt_dir() -> Path:
    return Path(str(resources.files("synthdiv") / "prompts" / "generate"))


def _template_files(extra_dir: str | None) -> dict[tuple[str, int], Path]:
    files: dict[tuple[str, int], Path] = {}
    dirs = [builtin_prompt_dir()] + ([Path(extra_dir)] if extra_dir else [])
    for directory in dirs:  # later directories override: a user's file wins over the built-in
        if not directory.is_dir():
            raise PromptError(f"prompt directory not found: {directory}")
        for path in sorted(directory.iterdir()):
            match = FILE_RE.match(path.name)
            if match:
                files[(match["family"], int(match["version"]))] = path
    return files


def available_families(extra_dir: str | None = None) -> list[str]:
    return sorted({family for family, _ in _template_files(extra_dir)})


def _parse(path: Path, family: str, version: int) -> PromptTemplate:
    try:
        data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PromptError(f"prompt file {path} is not valid YAML: {err}") from None
    missing = {"system", "user"} - set(data)
    if missing:
        raise PromptError(f"prompt file {path} lacks {sorted(missing)}")
    if data.get("family", family) != family or int(data.get("version", version)) != version:
        raise PromptError(f"prompt file {path}: family/version inside differ from the file name")
    return PromptTemplate(
        family=family,
        version=version,
        description=str(data.get("description", "")),
        system=str(data["system"]),
        user=str(data["user"]),
        uses_style=bool(data.get("uses_style", False)),
        uses_personas=bool(data.get("uses_personas", False)),
        multi_topic=bool(data.get("multi_topic", False)),
        extra_fields=tuple(data.get("extra_fields") or ()),
        source=str(path),
    )


def load_template(
    family: str, version: int | None = None, extra_dir: str | None = None
) -> PromptTemplate:
    files = _template_files(extra_dir)
    versions = sorted(v for f, v in files if f == family)
    if not versions:
        known = ", ".join(sorted({f for f, _ in files}))
        raise PromptError(f"unknown prompt family {family!r}; available: {known}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise PromptError(f"prompt family {family!r} has no version {chosen} (has {versions})")
    return _parse(files[(family, chosen)], family, chosen)


def load_styles() -> dict[str, str]:
    """Style name → instruction, from ``styles.yaml`` beside the templates."""
    data = yaml.safe_load((builtin_prompt_dir() / "styles.yaml").read_text())
    return {str(k): str(v) for k, v in data.items()}


def personas_path() -> Path:
    return Path(str(resources.files("synthdiv") / "data" / "personas.yaml"))


def load_personas(path: str | None = None) -> list[str]:
    """Persona descriptions from a YAML file holding ``personas: [..]`` (or a bare list)."""
    file = Path(path) if path else personas_path()
    if not file.is_file():
        raise PromptError(f"persona file not found: {file}")
    data = yaml.safe_load(file.read_text())
    items = data.get("personas") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise PromptError(f"persona file {file} must hold a non-empty list under 'personas'")
    bad = [p for p in items if not isinstance(p, str) or not p.strip()]
    if bad:
        raise PromptError(f"persona file {file} holds empty or non-string entries: {bad[:3]}")
    if len(set(items)) != len(items):
        raise PromptError(f"persona file {file} holds duplicate personas")
    return [p.strip() for p in items]
