"""Long texts cut into pieces at sentence boundaries, in several languages, and never longer than a piece may be."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.sentences import PIECE_MAX_CHARS, language_code, split_text


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize(("language", "text", "first"), [
    ("English", "Dr. Smith arrived at 5 p.m. today. He was late! " * 10, "Dr. Smith arrived at 5 p.m. today."),
    ("German", "Am 3. Okt. kam er z.B. spät an. Dann ging er heim. " * 10, "Am 3. Okt. kam er z.B. spät an."),
    ("Chinese", "今天天气很好。我们去公园散步吧！你觉得怎么样？" * 15, "今天天气很好。"),
    ("Japanese", "こんにちは。今日はいい天気ですね！散歩しましょうか？" * 15, "こんにちは。"),
    ("Auto", "Привет. Как дела? Всё хорошо, спасибо! " * 15, "Привет."),
])
def test_pieces_end_at_sentence_ends(language: str, text: str, first: str) -> None:
    pieces = split_text(text, language, max_chars=60)
    assert len(pieces) > 1
    assert pieces[0].startswith(first)
    assert all(len(piece) <= 60 for piece in pieces)
    assert all(piece[-1] in ".!?。！？" for piece in pieces)  # never inside a sentence when sentences fit
    assert "".join("".join(pieces).split()) == "".join(text.split())  # nothing lost, nothing repeated


def test_a_short_text_is_one_piece_as_it_was() -> None:
    assert split_text("Hello there. How are you?") == ["Hello there. How are you?"]


def test_short_sentences_are_packed_together() -> None:
    pieces = split_text("Yes. " * 200)
    assert len(pieces) == 4 and all(len(piece) <= PIECE_MAX_CHARS for piece in pieces)


@pytest.mark.parametrize("text", [
    "word " * 2000,  # no punctuation at all
    "a" * 5000,  # no space either
    "今天天气很好我们去公园散步吧" * 300,  # a language written without spaces, no punctuation
])
def test_run_on_texts_are_cut_within_the_limit(text: str) -> None:
    pieces = split_text(text)
    assert all(0 < len(piece) <= PIECE_MAX_CHARS for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


@settings(deadline=None)  # the suite runs on shared cores: no per-example time limit
@given(st.text(min_size=1, max_size=3000))
def test_any_text_is_cut_into_bounded_pieces_without_loss(text: str) -> None:
    pieces = split_text(text, max_chars=80)
    assert all(len(piece) <= 80 for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


@pytest.mark.parametrize(("text", "code"), [("こんにちは", "ja"), ("안녕하세요", "ko"), ("你好", "zh"),
                                            ("Привет", "ru"), ("Bonjour", "en"), ("", "en")])
def test_auto_picks_the_segmenter_from_the_script(text: str, code: str) -> None:
    assert language_code("Auto", text) == code
