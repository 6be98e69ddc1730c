"""The text checks (`backend.validation`) and the language check: what counts as empty, what is kept, and what
an error message repeats back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from backend.languages import normalize_language
from backend.validation import check_text, clean_text

# Zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen, LTR/RTL marks, RTL override, Mongolian
# vowel separator, NUL, ESC, DEL, ideographic space, line and paragraph separators, a lone combining accent.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f", "\u202e", "\u180e",
             "\x00", "\x1b", "\x7f", "\u3000", "\u2028", "\u2029", "\u0301", "\U000e0001", "\ue000"]


@pytest.mark.parametrize("text", [
    "", None, "   \n\t ", *INVISIBLE, "".join(INVISIBLE), " \u200b \ufeff\u200d ", "\u200b" * 900 + " " * 50,
])
def test_text_with_nothing_visible_is_empty(text):
    with pytest.raises(InvalidInput) as raised:
        check_text(text, 1000)
    assert raised.value.code == "empty_text"


@given(st.text(alphabet=st.characters(categories=["Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"]),
               max_size=200))
@settings(max_examples=300, deadline=None, database=None)
def test_any_text_without_letters_numbers_punctuation_or_symbols_is_empty(text):
    """Judged by Unicode category, so characters no list names (new format characters, unassigned code points,
    private use) are empty too."""
    with pytest.raises(InvalidInput) as raised:
        check_text(text, 1000)
    assert raised.value.code == "empty_text"


@pytest.mark.parametrize(("text", "kept"), [
    ("\ufeff Hello there.\u200b\n", "Hello there."),  # invisible ends trimmed
    ("\u200e\u200fHi\u2060", "Hi"),
    ("👩\u200d💻 ok", "👩\u200d💻 ok"),  # a joiner inside an emoji sequence carries meaning: kept
    ("e\u0301", "\u00e9"),  # NFC: the decomposed accent becomes one character
    ("...", "..."), ("42", "42"), ("€", "€"),  # punctuation, numbers and symbols are visible
])
def test_visible_text_is_kept_with_its_ends_trimmed(text, kept):
    assert check_text(text, 1000) == kept
    assert clean_text(text) == kept


def test_a_lone_surrogate_inside_the_text_is_refused_not_a_crash_later():
    with pytest.raises(InvalidInput) as raised:
        check_text("Hello \ud800 there", 1000)
    assert raised.value.code == "invalid_text"


def test_the_limit_counts_the_text_not_the_surrounding_whitespace_and_stops_huge_input_early():
    assert check_text("  " + "a" * 10 + "  ", 10) == "a" * 10
    with pytest.raises(InvalidInput) as raised:
        check_text("\u200b" * 5_000_000, 1000)  # refused by length before any per-character work
    assert raised.value.code == "text_too_long" and "1000" in raised.value.message


def test_an_unknown_language_is_quoted_only_in_part():
    with pytest.raises(InvalidInput) as raised:
        normalize_language("x" * 1_000_000)
    assert raised.value.code == "unknown_language"
    assert len(raised.value.message) < 200 and "xxxxxxxx" in raised.value.message
