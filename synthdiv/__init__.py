"""synthdiv: measure, generate and train on synthetic text of controlled diversity."""

__version__ = "0.1.0"
