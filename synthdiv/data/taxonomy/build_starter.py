"""Build ``starter.jsonl`` (the shipped topic taxonomy) from the hand-written lists in sources/.

Source format, one item per line::

    # Domain > Field > Subfield      opens a branch (the path of the leaves below it)
    Leaf topic: keyword, keyword, …   a leaf with 3–6 keywords

Run ``python synthdiv/data/taxonomy/build_starter.py`` after editing a source file; the loader in
:mod:`synthdiv.generate.taxonomy` validates the result.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent


def parse_source(text: str, name: str) -> list[dict]:
    rows: list[dict] = []
    branch: list[str] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if ">" in body or (body and ":" not in body):
                branch = [part.strip() for part in body.split(">")]
            continue
        if branch is None or ":" not in line:
            raise ValueError(f"{name}:{lineno}: expected 'Leaf: kw, kw, kw' under a '# Path' line")
        leaf, keywords = line.split(":", 1)
        kws = [k.strip() for k in keywords.split(",") if k.strip()]
        if not 3 <= len(kws) <= 6:
            raise ValueError(f"{name}:{lineno}: {leaf!r} has {len(kws)} keywords (want 3-6)")
        rows.append({"path": [*branch, leaf.strip()], "keywords": kws})
    return rows


def main() -> None:
    rows: list[dict] = []
    for source in sorted((HERE / "sources").glob("*.txt")):
        rows.extend(parse_source(source.read_text(), source.name))
    seen: set[tuple[str, ...]] = set()
    for row in rows:
        key = tuple(row["path"])
        if key in seen:
            raise ValueError(f"duplicate topic path {' > '.join(key)}")
        seen.add(key)
    out = HERE / "starter.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} topics to {out}")


if __name__ == "__main__":
    main()
