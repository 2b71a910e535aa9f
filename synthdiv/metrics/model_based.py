"""Model-based baselines: perplexity under a reference causal LM, and the perplexity gap between
two LMs (paper Table 1: GPT-2-Large, and GPT-2-Large vs GPT-2-XL).

Perplexity is the token-weighted corpus perplexity ``exp(Σ NLL / Σ predicted tokens)`` over a
seeded fixed-size subsample, repeated over ``ctx.n_seeds`` seeds
(:func:`synthdiv.metrics.protocol.seeded_subsamples`). The forward pass yields each document's
NLL, so the interval comes from ``ctx.n_resamples`` half-samples of the documents (no extra model
call), not from a t over a handful of seeds that, when they all read the whole corpus, agree
exactly. Documents are tokenized without special
tokens and truncated to ``max_length``; the first token of a document has no context and is not
scored. Models load once per process and are cached in ``ctx.resources``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from synthdiv.config import StrictModel
from synthdiv.corpus import Corpus
from synthdiv.metrics.base import MetricContext, MetricResult, register
from synthdiv.metrics.protocol import (
    ConfiguredMetric,
    half_sample_interval,
    half_sample_replicates,
    seeded_subsamples,
)
from synthdiv.models import ModelNotFoundError, resolve_causal_lm

Dtype = Literal["float32", "bfloat16", "float16"]


@dataclass
class NLLTotals:
    """Summed negative log-likelihood (nats) and the number of tokens it covers."""

    nll: float
    tokens: int
    # per document, in input order (None from stand-ins that only total)
    doc_nll: np.ndarray | None = None
    doc_tokens: np.ndarray | None = None

    @property
    def perplexity(self) -> float:
        return float(np.exp(self.nll / self.tokens)) if self.tokens else float("nan")


@dataclass
class CausalLM:
    model: Any
    tokenizer: Any
    path: str

    def nll(self, texts: list[str], batch_size: int, max_length: int) -> NLLTotals:
        """Token-weighted NLL of ``texts``; batches hold documents of similar length (less
        padding)."""
        import torch

        encoded = [
            self.tokenizer(t, add_special_tokens=False, truncation=True, max_length=max_length)[
                "input_ids"
            ]
            for t in texts
        ]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        doc_nll, doc_tokens = np.zeros(len(encoded)), np.zeros(len(encoded), dtype=np.int64)
        for start in range(0, len(order), batch_size):
            rows = [i for i in order[start : start + batch_size] if len(encoded[i]) >= 2]
            batch = [encoded[i] for i in rows]
            if not batch:
                continue
            width = max(len(ids) for ids in batch)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):  # right padding: positions stay 0..len-1
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, : len(ids)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            targets, target_mask = input_ids[:, 1:], mask[:, 1:].bool()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), targets, reduction="none"
            )
            doc_nll[rows] = (nll * target_mask).sum(dim=1).double().numpy()
            doc_tokens[rows] = target_mask.sum(dim=1).numpy()
        return NLLTotals(float(doc_nll.sum()), int(doc_tokens.sum()), doc_nll, doc_tokens)


def perplexity_of(totals: NLLTotals, docs: np.ndarray) -> float:
    """Token-weighted perplexity of the documents ``docs`` (indices into ``totals``)."""
    assert totals.doc_nll is not None and totals.doc_tokens is not None
    tokens = totals.doc_tokens[docs].sum()
    return float(np.exp(totals.doc_nll[docs].sum() / tokens)) if tokens else float("nan")


def document_interval(
    result: MetricResult, per_seed: list[Any], statistic: Any, ctx: MetricContext
) -> None:
    """Replace the seeds' t-interval by the half-sample one over documents (module doc), when
    every seed kept its per-document NLL. ``statistic(seed's item, half indices) -> value``."""
    items = [item for item in per_seed if item is not None]
    if len(items) != len(per_seed) or not items:
        return
    sizes = [int(item[0].doc_tokens.size) for item in items]
    replicates = half_sample_replicates(sizes, lambda j, half: statistic(items[j], half), ctx)
    finite = [r for r in replicates if np.isfinite(r)]
    seed_ci = [result.ci_low, result.ci_high]  # kept: the paper's interval over seeds
    result.ci_low, result.ci_high = half_sample_interval(result.value, finite, ctx.confidence)
    result.details |= {
        "ci_method": f"half-samples of documents ({len(finite)} replicates)",
        "seed_ci": seed_ci,
    }


def load_causal_lm(name: str | None, dtype: Dtype, ctx: MetricContext) -> CausalLM:
    """Load (once per ``ctx``) a causal LM and its tokenizer; a missing model is a clear error."""
    path = resolve_causal_lm(name)
    key = ("causal_lm", path, dtype)
    if key not in ctx.resources:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as err:  # missing files / not a model directory
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelNotFoundError(
                f"cannot load causal LM {name!r} (resolved "
                f"to {path!r}): {first_line}. Give a local "
                "directory, or a hub id on a machine with hub access."
            ) from None
        ctx.resources[key] = CausalLM(model.eval(), tokenizer, path)
    return ctx.resources[key]


class _ForwardPassParams(StrictModel):
    """How documents are run through an LM; shared by both perplexity metrics."""

    batch_size: int = Field(8, ge=1)
    max_length: int = Field(
        512, ge=2, description="Tokens per document; longer ones are truncated."
    )
    dtype: Dtype = "float32"
    sample_size: int | None = Field(
        None,
        gt=0,
        description="Documents per seed; None = the score stage's sample_size. "
        "A forward pass per document is costly on CPU: keep it small there.",
    )


class PerplexityParams(_ForwardPassParams):
    model: str | None = Field(
        None, description="Causal LM: HF id or local dir; None = the packaged SmolLM2-135M."
    )


@register
class Perplexity(ConfiguredMetric):
    """Perplexity of a reference causal LM: exp(token-weighted mean NLL) on seeded subsamples."""

    name: ClassVar[str] = "perplexity"
    version: ClassVar[str] = "2"  # 2: interval from half-samples of documents
    higher_is_more_diverse: ClassVar[bool] = True  # less predictable text
    Params = PerplexityParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        p = self.params
        lm = load_causal_lm(p.model, p.dtype, ctx)
        kept: list[Any] = []

        def statistic(sub: Corpus, seed: int) -> tuple[float, dict[str, Any]]:
            totals = lm.nll(sub.texts, p.batch_size, p.max_length)
            kept.append((totals,) if totals.doc_nll is not None else None)
            return totals.perplexity, {"tokens": totals.tokens, "nll_sum": totals.nll}

        result = seeded_subsamples(self, corpus, statistic, ctx, p.sample_size)
        document_interval(result, kept, lambda item, half: perplexity_of(item[0], half), ctx)
        result.details["model_path"] = lm.path
        result.tokens = sum(d["tokens"] for d in result.details["per_seed_details"])
        return result


class PerplexityGapParams(_ForwardPassParams):
    small_model: str | None = Field(None, description="None = the packaged SmolLM2-135M.")
    large_model: str = Field(
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        description="The larger sibling (same tokenizer as the default small model). Needs hub "
        "access or a local copy; the paper used GPT-2-Large vs GPT-2-XL.",
    )


@register
class PerplexityGap(ConfiguredMetric):
    """Perplexity gap: |PPL(small LM) − PPL(large LM)| on the same seeded subsamples."""

    name: ClassVar[str] = "perplexity_gap"
    # 2: the paper's absolute difference (1 was signed); 3: interval from half-samples of documents
    version: ClassVar[str] = "3"
    higher_is_more_diverse: ClassVar[bool] = True  # text where extra capacity helps more
    Params = PerplexityGapParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        p = self.params
        small = load_causal_lm(p.small_model, p.dtype, ctx)
        large = load_causal_lm(p.large_model, p.dtype, ctx)
        same_vocab = small.tokenizer.get_vocab() == large.tokenizer.get_vocab()
        kept: list[Any] = []

        def statistic(sub: Corpus, seed: int) -> tuple[float, dict[str, Any]]:
            a = small.nll(sub.texts, p.batch_size, p.max_length)
            b = large.nll(sub.texts, p.batch_size, p.max_length)
            kept.append((a, b) if a.doc_nll is not None and b.doc_nll is not None else None)
            # The paper's gap is the absolute difference; the sign (does the larger model predict
            # this text better?) stays in the details.
            signed = a.perplexity - b.perplexity
            return abs(signed), {
                "ppl_small": a.perplexity,
                "ppl_large": b.perplexity,
                "signed_gap": signed,
                "tokens": a.tokens,
            }

        result = seeded_subsamples(self, corpus, statistic, ctx, p.sample_size)
        document_interval(
            result,
            kept,
            lambda pair, half: abs(perplexity_of(pair[0], half) - perplexity_of(pair[1], half)),
            ctx,
        )
        signed = [d["signed_gap"] for d in result.details["per_seed_details"]]
        # Per-token perplexities of models with different tokenizers are not comparable.
        result.details |= {
            "signed_gap": sum(signed) / len(signed),
            "small_path": small.path,
            "large_path": large.path,
            "same_tokenizer": same_vocab,
        }
        return result
