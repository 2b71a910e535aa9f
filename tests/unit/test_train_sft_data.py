"""SFT label masks: only assistant tokens carry loss; bad rows are rejected and counted."""

from __future__ import annotations

import pytest

from synthdiv.train.sft_data import ChatTemplate, encode_conversations
from synthdiv.train.store import IGNORE_INDEX

CONVERSATION = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "Six."},
    ]
}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_hf_dir

    return AutoTokenizer.from_pretrained(smollm2_hf_dir())


def _trained_text(tokenizer, rows, i=0):
    labels = rows.labels[i]
    return tokenizer.decode([t for t in labels.tolist() if t != IGNORE_INDEX])


def test_chatml_mask_covers_assistant_turns_only(tokenizer):
    template = ChatTemplate(tokenizer)
    assert template.kind == "chatml"
    rows = encode_conversations([CONVERSATION], template, seq_len=128)
    assert _trained_text(tokenizer, rows) == "Four.<|im_end|>\nSix.<|im_end|>\n"
    full = tokenizer.decode(rows.input_ids[0].tolist())
    assert full.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    # the tokens equal the tokenizer's own chat template rendering
    rendered = tokenizer.apply_chat_template(CONVERSATION["messages"], tokenize=False)
    assert full.startswith(rendered)


def test_simple_template_for_tokenizers_without_chatml(tokenizer):
    rows = encode_conversations([CONVERSATION], ChatTemplate(tokenizer, "simple"), seq_len=128)
    eos = tokenizer.eos_token
    assert _trained_text(tokenizer, rows) == f"Four.{eos}\n\nSix.{eos}\n\n"
    assert "### User:" in tokenizer.decode(rows.input_ids[0].tolist())


def test_padding_and_truncation(tokenizer):
    template = ChatTemplate(tokenizer)
    rows = encode_conversations([CONVERSATION], template, seq_len=64)
    n_real = len(template.encode(CONVERSATION["messages"])[0])
    assert (rows.labels[0, n_real:] == IGNORE_INDEX).all()
    short = encode_conversations([CONVERSATION], template, seq_len=12)
    assert short.input_ids.shape == (0, 12) and "no assistant token" in short.rejected[0]["reason"]


def test_invalid_rows_are_rejected_with_reasons(tokenizer):
    rows = [
        CONVERSATION,
        None,
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "robot", "content": "x"}]},
    ]
    out = encode_conversations(rows, ChatTemplate(tokenizer), seq_len=64, system_prompt="S")
    assert out.n_in == len(out.input_ids) + len(out.rejected) == 4
    assert [r["reason"] for r in out.rejected] == [
        "row has no 'messages' list",
        "no non-empty assistant message",
        "a message needs role in system/user/assistant and string content",
    ]


def test_packaged_instruction_set_is_valid(tokenizer):
    from synthdiv.train.config import SftData
    from synthdiv.train.sft_data import read_conversations

    rows, _ = read_conversations(SftData())
    out = encode_conversations(rows, ChatTemplate(tokenizer), seq_len=512)
    assert len(rows) >= 150 and not out.rejected


@pytest.mark.parametrize("kind", ["simple", "chatml"])
def test_the_installed_chat_template_renders_what_training_saw(tokenizer, kind, tmp_path):
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    if kind == "simple":
        plain.chat_template = None  # like the paper's CodeGen tokenizer: no chat template
    template = ChatTemplate(plain, "auto")
    assert template.kind == kind
    template.install()
    plain.save_pretrained(tmp_path)  # the export copies the store's tokenizer like this
    exported = AutoTokenizer.from_pretrained(tmp_path)
    trained = plain.decode(template.encode(CONVERSATION["messages"])[0])
    assert exported.apply_chat_template(CONVERSATION["messages"], tokenize=False) == trained
    prompt = exported.apply_chat_template(
        CONVERSATION["messages"][:2], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("### Assistant:\n" if kind == "simple" else "<|im_start|>assistant\n")
