"""Voice names: what is refused (markup, mentions, emoji, invisible characters, length) and what collides."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.voice_names import MAX_NAME_CHARS, BadVoiceName, check_voice_name


@pytest.mark.parametrize(("name", "display", "key"), [
    ("Narrator", "Narrator", "narrator"),
    ("  my   voice  ", "my voice", "my voice"),
    ("ＭＹ ＶＯＩＣＥ", "MY VOICE", "my voice"),  # full-width letters
    ("𝐁𝐨𝐥𝐝", "Bold", "bold"),  # mathematical bold letters
    ("Straße", "Straße", "strasse"),
    ("Zoë", "Zoë", "zoë"),
    ("Zoe\u0308", "Zoë", "zoë"),  # decomposed: NFKC composes it
    ("O'Brien-2_v1.0", "O'Brien-2_v1.0", "o'brien-2_v1.0"),
    ("日本語の声", "日本語の声", "日本語の声"),
    ("नमस्ते", "नमस्ते", "नमस्ते"),  # combining vowel signs
    ("a\u00a0b", "a b", "a b"),  # a no-break space is a space
    ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS),
])
def test_accepted_names_and_their_keys(name: str, display: str, key: str) -> None:
    assert check_voice_name(name) == (display, key)


@pytest.mark.parametrize(("name", "why"), [
    ("", "needs a name"),
    ("   ", "needs a name"),
    ("x" * (MAX_NAME_CHARS + 1), "33 characters"),
    ("**bold**", "“*”"),
    ("`code`", "“`”"),
    ("~~gone~~", "“~”"),
    ("||spoiler||", "“|”"),
    ("> quote", "“>”"),
    ("# heading", "“#”"),
    ("[link](https://x.y)", "“[”"),
    ("@everyone", "“@”"),
    ("<@1234>", "“<”"),
    ("<#1234>", "“<”"),
    ("<!here>", "“<”"),
    (":smile:", "“:”"),
    ("hi 😀", "“😀”"),
    ("zero\u200bwidth", "U+200B"),
    ("joiner\u200d", "U+200D"),
    ("rtl\u202eevil", "U+202E"),
    ("bom\ufeff", "U+FEFF"),
    ("tab\there", "U+0009"),
    ("new\nline", "U+000A"),
    ("nul\x00", "U+0000"),
    ("\u0301accent first", "accent marks"),
    ("a" + "\u0334" * 4, "accent marks"),
    ("...", "at least one letter"),
    ("'", "at least one letter"),
])
def test_refused_names_say_why(name: str, why: str) -> None:
    with pytest.raises(BadVoiceName) as refused:
        check_voice_name(name)
    assert why in refused.value.message
    assert refused.value.code == "bad_voice_name"


@given(st.text(max_size=80))
def test_any_input_is_refused_or_yields_a_safe_name(name: str) -> None:
    try:
        display, key = check_voice_name(name)
    except BadVoiceName:
        return
    assert 1 <= len(display) <= MAX_NAME_CHARS
    assert display == display.strip() and "  " not in display
    for char in display:
        category = unicodedata.category(char)
        assert char in " -_.'" or category[0] in "LM" or category == "Nd", repr(char)
    assert check_voice_name(display) == (display, key)  # stable: a stored name checks to itself
    assert check_voice_name(key)[1] == key
