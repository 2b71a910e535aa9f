"""How the report words its numbers and its claim: values with as many digits as their CI
supports, and one sentence on how far the metric ranking can be trusted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from synthdiv.stats import MIN_CORPORA_FOR_CLAIM

CI_SIG_DIGITS = 2  # digits of the CI's width shown: more would print noise as if it were signal
MAX_SIG_DIGITS = 6
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def finite_number(value: Any) -> float | None:
    """A finite float from a metric or a CSV cell ('' and NaN are missing), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_ci(value: Any, low: Any = None, high: Any = None) -> str:
    """``0.52 [0.31, 0.74]``: the CI's width sets the last digit shown (its two leading digits).

    Without a CI, or with one of zero width, the value gets three significant digits. Magnitudes
    outside [1e-3, 1e5) share one power of ten, ``1.99 [1.98, 2.00] ×10⁻⁸``, so the digits that
    differ stay readable.
    """
    v = finite_number(value)
    if v is None:
        return "—"
    lo, hi = finite_number(low), finite_number(high)
    bounds = [b for b in (lo, hi) if b is not None]
    big = max(abs(x) for x in (v, *bounds))
    exp = 0 if big == 0 or 1e-3 <= big < 1e5 else math.floor(math.log10(big))
    suffix = f" ×10{str(exp).translate(_SUPERSCRIPT)}" if exp else ""
    v, big = v / 10**exp, big / 10**exp
    max_decimals = max(0, MAX_SIG_DIGITS - 1 - math.floor(math.log10(big))) if big else 0
    if lo is not None and hi is not None and hi - lo > 0:
        lo, hi = lo / 10**exp, hi / 10**exp
        decimals = max(0, CI_SIG_DIGITS - 1 - math.floor(math.log10(hi - lo)))
        if decimals <= max_decimals:  # else the CI is narrower than the value's last digit shown
            return f"{v:.{decimals}f} [{lo:.{decimals}f}, {hi:.{decimals}f}]{suffix}"
    decimals = max(0, 2 - math.floor(math.log10(abs(v)))) if v else 0
    text = f"{v:.{decimals}f}"
    # trailing zeros of a bare value are not information (8.00 is the count 8)
    return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix


@dataclass(frozen=True)
class PanelCI:
    """One metric's Spearman ρ in one (model size, variant) panel, signed so that > 0 means
    more diverse corpora gave more accurate models."""

    panel: str
    n: int
    rho: float | None
    low: float | None
    high: float | None
    note: str = ""
    perm_p: float | None = None
    verdict: str = ""  # the correlate stage's verdict; "" in tables written before it had one

    @classmethod
    def from_row(cls, row: dict[str, str]) -> PanelCI:
        """From a row of the correlate stage's correlations.csv."""
        sign = -1 if row.get("direction", "1").strip() == "-1" else 1
        rho, low, high = (
            finite_number(row.get(k)) for k in ("spearman", "spearman_ci_low", "spearman_ci_high")
        )
        if sign < 0 and low is not None and high is not None:
            low, high = -high, -low
        return cls(
            panel=f"{row['model_size']} / {row['variant']}",
            n=int(float(row.get("n") or 0)),
            rho=None if rho is None else sign * rho,
            low=low,
            high=high,
            note=row.get("note", ""),
            perm_p=finite_number(row.get("spearman_perm_p")),
            verdict=row.get("verdict", ""),
        )

    @property
    def has_ci(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def inconclusive(self) -> bool:
        """No CI, a CI spanning 0, or (by the stage's full rule) not supported."""
        spans = not self.has_ci or self.low <= 0 <= self.high  # type: ignore[operator]
        return spans or self.verdict not in ("", "supported")

    def cell(self) -> str:
        if self.rho is None:
            return f"undefined ({self.note})" if self.note else "undefined"
        perm = "" if self.perm_p is None else f" · p={fmt_ci(self.perm_p)}"
        return (
            fmt_ci(self.rho, self.low, self.high)
            + ("" if self.has_ci else " (no CI)")
            + f"{perm} · n={self.n}"
        )


def trust_line(n_corpora: int, top_metric: str, panels: list[PanelCI], confidence: float) -> str:
    """One sentence on how far the ranking's head can be trusted, plain about too little data."""
    pct = f"{confidence:.0%}"
    widths = [p.high - p.low for p in panels if p.has_ci]  # type: ignore[operator]
    head = f"n = {n_corpora} corpora; " + (
        f"the {pct} CI of {top_metric}'s ρ is up to {fmt_ci(max(widths))} wide"
        if widths
        else f"no {pct} CI of {top_metric}'s ρ could be computed"
    )
    if n_corpora < MIN_CORPORA_FOR_CLAIM:
        return (
            f"Too few corpora for a claim ({head}; a claim needs at least "
            f"{MIN_CORPORA_FOR_CLAIM}): read the figures as a pipeline check, not as evidence."
        )
    if not widths:
        return f"No claim: {head}."
    spanning = [p for p in panels if p.inconclusive]
    if spanning:
        return (
            f"No claim: {head}, and it is undefined or spans 0 (or the permutation test, the "
            f"Fisher-z CI or the slope's CI does) in {len(spanning)} of {len(panels)} panel(s)."
        )
    signs = {p.low > 0 for p in panels}  # type: ignore[operator]
    if len(signs) > 1:
        return f"No single claim: {head}; it excludes 0 in every panel but with opposite signs."
    effect = "more" if signs == {True} else "less"
    return (
        f"Supported within this study: {head}; it excludes 0 in every panel "
        f"(more diverse by {top_metric} → {effect} accurate models)."
    )
