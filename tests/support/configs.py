"""A minimal stage config for tests of tracking and the stage contract."""

from __future__ import annotations

from pydantic import Field

from synthdiv.config import RuntimeConfig, StrictModel


class TinyConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    alpha: float = 0.5
    nested: dict = Field(default_factory=lambda: {"k": 3})
