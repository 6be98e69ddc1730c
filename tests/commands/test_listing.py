"""Lists cut to a platform's message limit keep whole lines and say how many were left out."""

from __future__ import annotations

from commands.listing import fit_lines


def test_everything_fits() -> None:
    assert fit_lines(["a", "b"], 100) == "a\nb"


def test_the_rest_is_counted_and_the_limit_holds() -> None:
    lines = [f"voice {index:02}" for index in range(50)]
    text = fit_lines(lines, 60)
    assert len(text) <= 60
    shown = text.splitlines()
    assert shown[:-1] == lines[: len(shown) - 1]
    assert shown[-1] == f"…and {50 - (len(shown) - 1)} more"


def test_a_line_longer_than_the_limit_is_not_cut_in_half() -> None:
    assert fit_lines(["x" * 200, "y"], 50) == "…and 2 more"
