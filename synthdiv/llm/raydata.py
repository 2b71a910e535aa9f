"""What the two ``ray.data.llm`` backends (openai, vllm) share: running a processor over request
rows so that a failed batch costs only its own rows, and turning output rows into responses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from synthdiv.llm.base import ChatRequest, ChatResponse


@contextlib.contextmanager
def tolerate_failed_batches() -> Iterator[None]:
    """Let Ray Data finish a dataset whose blocks fail; the caller reports the lost rows."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    before = ctx.max_errored_blocks
    ctx.max_errored_blocks = -1
    try:
        yield
    finally:
        ctx.max_errored_blocks = before


def require_ray(backend: str) -> None:
    """Fail clearly unless Ray is up: ray.data.llm would otherwise start a private local Ray,
    and only stages (synthdiv.runtime) decide where Ray runs."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError(
            f"the {backend} backend runs on Ray Data: call it inside a stage "
            "(synthdiv.runtime.ray_session)"
        )


def run_processor(processor: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All output rows of ``processor`` over ``rows``; rows of failed batches are simply absent."""
    import ray

    with tolerate_failed_batches():
        return processor(ray.data.from_items(rows)).take_all()


def responses_from_rows(
    rows: list[dict[str, Any]],
    requests: list[ChatRequest],
    to_response: Callable[[dict[str, Any]], ChatResponse],
    lost_error: str,
) -> Iterator[ChatResponse]:
    """One response per request: converted output rows, then an error for each lost request."""
    seen: set[str] = set()
    for row in rows:
        response = to_response(row)
        seen.add(response.id)
        yield response
    for request in requests:
        if request.id not in seen:
            yield ChatResponse(id=request.id, error=lost_error)
