"""The report's number formatting and its one line on how far to trust a study."""

from __future__ import annotations

import math
import re

import pytest

from synthdiv.report_numbers import PanelCI, fmt_ci, trust_line
from synthdiv.stats import MIN_CORPORA_FOR_CLAIM

NUM = r"-?\d+(?:\.\d+)?"
CI = re.compile(
    rf"^(?P<value>-?\d+(?:\.(?P<decimals>\d+))?) \[(?P<low>{NUM}), (?P<high>{NUM})\]"
    r"(?: ×10(?P<exp>[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?$"
)
_DIGITS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def _parse(text: str) -> tuple[float, float, float, int, int]:
    """(value, low, high, decimals, power of ten) back from a formatted CI, the power applied."""
    match = CI.match(text)
    assert match, text
    exp = int(match["exp"].translate(_DIGITS)) if match["exp"] else 0
    value, low, high = (float(match[k]) * 10**exp for k in ("value", "low", "high"))
    return value, low, high, len(match["decimals"] or ""), exp


def test_the_issue_example_reads_as_one_power_of_ten():
    text = fmt_ci(1.987e-08, 1.9861e-08, 1.9893e-08)
    assert "e-" not in text and text.endswith("×10⁻⁸")
    value, low, high, _, _ = _parse(text)
    assert math.isclose(value, 1.987e-08, rel_tol=1e-3)
    assert low < value < high  # the digits that differ are shown, not rounded away


@pytest.mark.parametrize(
    "value,width",
    [
        (0.52, 0.43),
        (0.52, 0.043),
        (153.2, 12.7),
        (12345.6, 3.1),
        (-0.31, 0.9),
        (0.004, 0.0012),
        (3.2e-9, 4e-10),
        (7.5e6, 2e5),
    ],
)
def test_the_ci_width_sets_the_last_digit(value, width):
    low, high = value - width / 2, value + width / 2
    shown_value, shown_low, shown_high, decimals, exp = _parse(fmt_ci(value, low, high))
    # the last digit shown is the width's second significant digit, in the shown units
    assert decimals == max(0, 1 - math.floor(math.log10(width / 10**exp)))
    step = 10**exp * 10**-decimals
    for shown, exact in ((shown_value, value), (shown_low, low), (shown_high, high)):
        assert abs(shown - exact) <= step / 2 + 1e-12 * abs(exact)


def test_magnitudes_outside_the_readable_range_share_a_power_of_ten():
    for value in (2.5e-5, 4.2e7, -6.1e-12):
        text = fmt_ci(value, *sorted((value * 0.9, value * 1.1)))
        assert "×10" in text and "e" not in text
        assert math.isclose(_parse(text)[0], value, rel_tol=0.05)
    for value in (0.002, 0.5, 42.0, 80_000.0):  # everyday magnitudes stay plain
        assert "×10" not in fmt_ci(value, value * 0.9, value * 1.1)


def test_a_value_without_ci_gets_three_significant_digits_and_no_padding():
    assert fmt_ci(0.123456) == "0.123"
    assert fmt_ci(0.25) == "0.25"  # not 0.250
    assert fmt_ci(8.0) == "8"  # a count
    assert fmt_ci(0.9999999999999996) == "1"
    assert fmt_ci(1.987e-08) == "1.99 ×10⁻⁸"
    # a zero-width CI (one seed), or one narrower than six significant digits, adds nothing
    assert fmt_ci(0.49041, 0.49041, 0.49041) == fmt_ci(0.49041) == "0.49"
    assert fmt_ci(0.49041, 0.49041 - 1e-12, 0.49041 + 1e-12) == "0.49"


def test_missing_and_non_finite_values():
    assert fmt_ci(None) == fmt_ci(float("nan")) == fmt_ci("") == "—"
    assert fmt_ci(0.0) == "0"
    assert fmt_ci(0.5, None, 0.7) == "0.5"  # half a CI is no CI
    assert fmt_ci("0.25", "0.1", "0.4") == fmt_ci(0.25, 0.1, 0.4)  # CSV cells


def _panel(low: float | None, high: float | None, rho: float = 0.5, n: int = 8) -> PanelCI:
    return PanelCI("tiny / base", n, rho, low, high)


def test_trust_says_plainly_when_there_are_too_few_corpora():
    few = MIN_CORPORA_FOR_CLAIM - 1
    line = trust_line(few, "vendi", [_panel(0.3, 0.9)], 0.95)  # even a CI clear of 0
    assert line.startswith("Too few corpora for a claim") and f"n = {few} corpora" in line
    assert f"at least {MIN_CORPORA_FOR_CLAIM}" in line and fmt_ci(0.6) in line
    assert "no 95% CI" in trust_line(2, "vendi", [_panel(None, None, rho=None, n=2)], 0.95)


def test_trust_makes_no_claim_when_a_ci_spans_zero_or_is_missing():
    n = MIN_CORPORA_FOR_CLAIM
    spans = trust_line(n, "vendi", [_panel(0.2, 0.9), _panel(-0.3, 0.8)], 0.9)
    assert spans.startswith("No claim") and "1 of 2 panel" in spans and "90% CI" in spans
    assert "up to " + fmt_ci(1.1) + " wide" in spans  # the widest CI
    missing = trust_line(n, "vendi", [_panel(0.2, 0.9), _panel(None, None)], 0.95)
    assert missing.startswith("No claim") and "1 of 2 panel" in missing
    assert trust_line(n, "vendi", [], 0.95).startswith("No claim")


def test_trust_supports_a_claim_only_when_every_ci_excludes_zero_with_one_sign():
    n = MIN_CORPORA_FOR_CLAIM + 3
    up = trust_line(n, "vendi", [_panel(0.2, 0.9), _panel(0.4, 0.95)], 0.95)
    assert up.startswith("Supported") and "more accurate" in up and f"n = {n} corpora" in up
    down = trust_line(n, "vendi", [_panel(-0.9, -0.2, rho=-0.5)], 0.95)
    assert down.startswith("Supported") and "less accurate" in down
    mixed = trust_line(n, "vendi", [_panel(0.2, 0.9), _panel(-0.9, -0.2, rho=-0.5)], 0.95)
    assert mixed.startswith("No single claim")


def test_panel_rho_is_signed_by_the_metric_direction():
    row = {
        "metric": "self_repetition",
        "model_size": "tiny",
        "variant": "sft",
        "n": "6",
        "direction": "-1",
        "spearman": "-0.7",
        "spearman_ci_low": "-0.95",
        "spearman_ci_high": "-0.2",
        "note": "",
    }
    panel = PanelCI.from_row(row)
    assert (panel.panel, panel.n, panel.rho, panel.low, panel.high) == (
        "tiny / sft",
        6,
        0.7,
        0.2,
        0.95,
    )
    assert PanelCI.from_row(row | {"direction": "1"}).rho == -0.7
    undefined = PanelCI.from_row(
        row
        | {
            "spearman": "",
            "spearman_ci_low": "",
            "spearman_ci_high": "",
            "note": "n=2 < 3: correlation undefined",
        }
    )
    assert undefined.rho is None and not undefined.has_ci and "n=2 < 3" in undefined.cell()
    assert PanelCI.from_row(row | {"spearman_ci_low": ""}).cell().endswith("(no CI) · n=6")


@pytest.mark.parametrize("n_metrics", [1, 4, 5, 11])
def test_score_plot_takes_any_number_of_metrics(n_metrics, tmp_path):
    """One panel per metric on a 4-wide grid: spare cells stay blank (5 metrics crashed once)."""
    from synthdiv.report_plots import plot_scores

    rows = [
        {"metric": f"m{i}", "value": 1.0, "ci_low": 0.5, "ci_high": 1.5,
         "higher_is_more_diverse": i % 2 == 0}
        for i in range(n_metrics)
    ]  # fmt: skip
    path = plot_scores(rows, tmp_path / "scores.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
