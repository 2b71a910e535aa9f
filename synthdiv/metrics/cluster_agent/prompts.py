"""Versioned prompt templates of the cluster-agent, read from ``synthdiv/prompts/cluster_agent``.

A template file ``<name>_<version>.md`` holds a YAML front matter (``id``, ``version``,
``description``, optional ``documents``), then the system message, a line ``=== user ===``, and the
user message.
Placeholders are ``$name`` (``string.Template``): prompts quote JSON, whose braces would clash
with ``str.format``. The fixed text (instructions, criteria) goes in the system message and the
samples last, so an engine's prefix cache serves the shared part of every batched call.

Documents are data, never instructions (a corpus may carry prompt injections). ``documents:
tagged`` (v2) quotes each one in a ``<document id="N">`` block whose content is escaped so it
cannot close or open a block; v1 templates keep v1's ``[N] text`` numbering, so recorded v1 runs
rebuild byte-identical prompts (and hit the response cache).
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from importlib import resources

import yaml

TEMPLATE_DIR = ("prompts", "cluster_agent")
USER_SEPARATOR = "=== user ==="
TEMPLATE_NAMES = ("criteria", "merge", "guidance", "cluster", "verify")
DEFAULT_VERSION = "v2"
DOCUMENT_FORMATS = ("numbered", "tagged")


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: str
    system: str
    user: str
    documents: str = "numbered"  # how ``$samples`` quotes the documents: DOCUMENT_FORMATS

    @property
    def ref(self) -> str:
        """``id@version``: what a :class:`ChatRequest` records as its ``prompt_id``."""
        return f"{self.id}@{self.version}"

    def messages(self, **values: object) -> list[dict[str, str]]:
        """Chat messages with every ``$placeholder`` filled; a missing value is an error."""
        fill = {k: str(v) for k, v in values.items()}
        try:
            return [
                {"role": "system", "content": string.Template(self.system).substitute(fill)},
                {"role": "user", "content": string.Template(self.user).substitute(fill)},
            ]
        except KeyError as err:
            raise KeyError(f"prompt {self.ref} needs a value for ${err.args[0]}") from None

    def quote_documents(self, texts: list[str], max_chars: int) -> str:
        """The ``$samples`` text for ``texts`` in this template's document format."""
        return (tagged if self.documents == "tagged" else numbered)(texts, max_chars)


def parse_template(text: str, source: str) -> PromptTemplate:
    if not text.startswith("---\n"):
        raise ValueError(f"prompt template {source}: missing '---' front matter")
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header) or {}
    if USER_SEPARATOR not in body:
        raise ValueError(f"prompt template {source}: missing the '{USER_SEPARATOR}' line")
    system, user = body.split(USER_SEPARATOR, 1)
    for key in ("id", "version"):
        if not meta.get(key):
            raise ValueError(f"prompt template {source}: front matter lacks {key!r}")
    documents = str(meta.get("documents", "numbered"))
    if documents not in DOCUMENT_FORMATS:
        raise ValueError(f"prompt template {source}: documents must be one of {DOCUMENT_FORMATS}")
    return PromptTemplate(
        str(meta["id"]), str(meta["version"]), system.strip(), user.strip(), documents
    )


@functools.cache
def load_template(name: str, version: str = DEFAULT_VERSION) -> PromptTemplate:
    """The packaged template ``name`` at ``version``; a clear error names what is available."""
    folder = resources.files("synthdiv").joinpath(*TEMPLATE_DIR)
    path = folder / f"{name}_{version}.md"
    if not path.is_file():
        have = sorted(p.name for p in folder.iterdir() if p.name.endswith(".md"))
        raise FileNotFoundError(
            f"no prompt template {name}_{version}.md; available: {', '.join(have)}"
        )
    return parse_template(path.read_text(encoding="utf-8"), path.name)


def template_refs(version: str) -> dict[str, str]:
    """``name → id@version`` of every template a run at ``version`` uses (logged for lineage)."""
    return {name: load_template(name, version).ref for name in TEMPLATE_NAMES}


def numbered(texts: list[str], max_chars: int) -> str:
    """Samples as ``[1] …`` blocks, each truncated to ``max_chars`` (marked, so the LLM knows)."""
    return "\n\n".join(f"[{i}] {truncate(t, max_chars)}" for i, t in enumerate(texts, start=1))


def tagged(texts: list[str], max_chars: int) -> str:
    """Samples as ``<document id="N">`` blocks, each truncated, then escaped (:func:`escape`)."""
    return "\n\n".join(
        f'<document id="{i}">\n{escape(truncate(t, max_chars))}\n</document>'
        for i, t in enumerate(texts, start=1)
    )


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities: a document then holds no ``<`` at all, so no text in it
    (``</document>``, ``<document id="9">``, any spacing or case) can end its block or fake
    another one. Models read entities as the characters they stand for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, max_chars: int) -> str:
    text = " ".join(text.split())  # newlines inside a sample would blur the sample boundaries
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip() + "..."
