"""Cheap checks that a generator can answer at all, run before any expensive work starts."""

from __future__ import annotations

import urllib.error
import urllib.request

from synthdiv.generate.config import WeightedGenerator
from synthdiv.llm import build_backend

PROBE_TIMEOUT_S = 5.0


class GeneratorUnavailable(RuntimeError):
    """A configured generator that cannot be reached or loaded."""


def check_generators(generators: list[WeightedGenerator]) -> None:
    for gen in generators:
        llm = gen.llm
        if llm.backend == "openai":
            if not llm.base_url:
                raise GeneratorUnavailable(f"generator {gen.label}: openai backend needs base_url")
            url = llm.base_url.rstrip("/") + "/models"
            try:
                urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S).close()
            except urllib.error.HTTPError:
                pass  # it answered: an endpoint without /models (or needing auth) is reachable
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise GeneratorUnavailable(
                    f"generator {gen.label} unreachable at {llm.base_url}: {reason}"
                ) from None
        elif llm.backend == "embedded":
            try:
                build_backend(llm).close()  # resolves model files without loading weights
            except (FileNotFoundError, ValueError, ImportError) as err:
                raise GeneratorUnavailable(f"generator {gen.label}: {err}") from None
