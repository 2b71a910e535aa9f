"""SFT data: JSONL chat conversations → token rows whose labels cover assistant turns only.

Row format (one conversation per line)::

    {"messages": [{"role": "system", "content": "…"}, {"role": "user", "content": "…"},
                  {"role": "assistant", "content": "…"}, …]}

Each turn is encoded as prefix + content + suffix of the chat template and tokenized piece by
piece, so the label mask is exact: assistant content and its end-of-turn token carry loss, every
other token (system, user, role headers, padding) is ``IGNORE_INDEX``.

Conversations are packed several to a row (``data.pack``, :func:`synthdiv.train.packing.
pack_conversations`) with a ``segments`` array that the loop turns into per-conversation position
ids, so attention never crosses a conversation; at seq_len 2048 a padded layout would be mostly
padding. Tokenizing runs on a Ray Data actor pool (``tokenize_with_ray``): one task per file reads
lines, the actors encode them, rows are grouped by a stable hash into output shards, and each
shard is packed and written by a Ray task; the driver holds only counts and the rejected rows.
``tokenize_with_ray: false`` runs the same steps in the driver (tiny sets, debugging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from synthdiv.shards import filesystem
from synthdiv.train.config import SftData
from synthdiv.train.packing import pack_conversations
from synthdiv.train.store import IGNORE_INDEX

ROLES = ("system", "user", "assistant")
# The Jinja form of each format encode_turn writes, saved with the exported tokenizer: eval
# applies the model's chat template, so it must be the one the model was fine-tuned on.
CHAT_TEMPLATES = {  # newlines inside expressions: transformers renders with trim_blocks
    "chatml": "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "simple": "{% for message in messages %}{{ '### ' + (message['role'] | capitalize) + ':\\n' + "
    "message['content'] }}{% if message['role'] == 'assistant' %}{{ eos_token }}"
    "{% endif %}{{ '\\n\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}",
}


class ChatTemplate:
    """ChatML (``<|im_start|>role\\n…<|im_end|>\\n``, SmolLM2's format) or a plain fallback."""

    def __init__(self, tokenizer: Any, kind: str = "auto"):
        self.tokenizer = tokenizer
        has_chatml = (
            "<|im_start|>" in (tokenizer.chat_template or "")
            and tokenizer.convert_tokens_to_ids("<|im_end|>") != tokenizer.unk_token_id
        )
        self.kind = ("chatml" if has_chatml else "simple") if kind == "auto" else kind

    def install(self) -> None:
        """Give the tokenizer the chat template of the format training uses (kept if it already
        has ChatML), so the exported model is prompted at eval as it was trained."""
        if self.kind == "simple" or "<|im_start|>" not in (self.tokenizer.chat_template or ""):
            self.tokenizer.chat_template = CHAT_TEMPLATES[self.kind]

    def encode_turn(self, role: str, content: str) -> tuple[list[int], list[bool]]:
        """Token ids of one turn and, per token, whether it is trained on."""

        def enc(text: str) -> list[int]:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

        if self.kind == "chatml":
            head, body, end = enc(f"<|im_start|>{role}\n"), enc(content), enc("<|im_end|>\n")
        else:
            head, body = enc(f"### {role.capitalize()}:\n"), enc(content)
            end = (
                [self.tokenizer.eos_token_id] + enc("\n\n") if role == "assistant" else enc("\n\n")
            )
        trained = role == "assistant"
        return head + body + end, [False] * len(head) + [trained] * (len(body) + len(end))

    def encode(self, messages: list[dict[str, str]]) -> tuple[list[int], list[bool]]:
        ids: list[int] = []
        mask: list[bool] = []
        for message in messages:
            turn_ids, turn_mask = self.encode_turn(message["role"], message["content"])
            ids += turn_ids
            mask += turn_mask
        return ids, mask


@dataclass
class SftRows:
    input_ids: np.ndarray
    labels: np.ndarray
    segments: np.ndarray  # 1, 2, … per conversation in a row; 0 = padding
    n_in: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def validate_conversation(row: Any, system_prompt: str | None) -> list[dict[str, str]]:
    """The conversation's messages, or ValueError naming what is wrong with the row."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise ValueError("row has no 'messages' list")  # noqa: TRY004 (a bad row, caught and counted)
    messages = row["messages"]
    for m in messages:
        if (
            not isinstance(m, dict)
            or m.get("role") not in ROLES
            or not isinstance(m.get("content"), str)
        ):
            raise ValueError("a message needs role in system/user/assistant and string content")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise ValueError("no non-empty assistant message")
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages


def encode_row(
    row: Any, template: ChatTemplate, seq_len: int, system_prompt: str | None
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation, truncated to ``seq_len``; ValueError (the
    reason) for an invalid row or one with no assistant token left."""
    messages = validate_conversation(row, system_prompt)
    ids, mask = template.encode(messages)
    ids, mask = ids[:seq_len], mask[:seq_len]
    if not any(mask):
        raise ValueError(f"no assistant token within seq_len={seq_len}")
    return ids, [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]


def pad_id_of(tokenizer: Any) -> int:
    return tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id


def encode_conversations(
    rows: list[Any],
    template: ChatTemplate,
    seq_len: int,
    system_prompt: str | None = None,
    pack: bool = False,
) -> SftRows:
    """Rows → (input_ids, labels, segments), one conversation per row unless ``pack``; invalid
    or fully truncated rows are rejected with a reason, so ``n_in == conversations +
    len(rejected)``."""
    ids_rows, label_rows, rejected = [], [], []
    for index, row in enumerate(rows):
        try:
            ids, labels = encode_row(row, template, seq_len, system_prompt)
        except ValueError as err:
            rejected.append({"row": index, "reason": str(err)})
            continue
        ids_rows.append(np.asarray(ids, np.int64))
        label_rows.append(np.asarray(labels, np.int64))
    packed = pack_conversations(ids_rows, label_rows, seq_len, pad_id_of(template.tokenizer), pack)
    return SftRows(**packed, n_in=len(rows), rejected=rejected)


def packaged_sft_path() -> str:
    return str(resources.files("synthdiv") / "data" / "sft")


def sft_files(data: SftData) -> tuple[list[str], str]:
    """The JSONL files of the SFT set (sorted: a file's index is part of each row's identity)
    and the path they were found under."""
    path = data.path or packaged_sft_path()
    fs, root = filesystem(path)
    if not fs.exists(root):
        raise FileNotFoundError(f"SFT dataset not found: {path}")
    files = sorted(f for f in fs.find(root) if f.endswith(".jsonl")) if fs.isdir(root) else [root]
    if not files:
        raise FileNotFoundError(f"SFT dataset {path} holds no .jsonl files")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [f if protocol == "file" else f"{protocol}://{f}" for f in files], path


def iter_lines(file_uri: str) -> Any:
    """(line number, text) of every non-blank line of one file."""
    fs, path = filesystem(file_uri)
    with fs.open(path, "r") as fh:
        for number, line in enumerate(fh):
            if line.strip():
                yield number, line


def parse_line(line: str) -> Any:
    """The JSON row, or None for an unparsable line (rejected downstream with a reason)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def read_conversations(data: SftData) -> tuple[list[Any], str]:
    """Parsed JSONL rows (None for an unparsable line) and the path read, in the driver."""
    files, path = sft_files(data)
    return [parse_line(line) for file in files for _, line in iter_lines(file)], path
