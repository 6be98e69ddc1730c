"""What of a chat message is read aloud, and which voice reads it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.read_aloud import MAX_READ_CHARS, ReadSettings, speakable, with_name


@pytest.mark.parametrize(("message", "said"), [
    ("hello there", "hello there"),
    ("look https://www.example.com/a?b=c#d and <https://docs.python.org>", "look a link to example.com and a link "
     "to docs.python.org"),
    ("run this:\n```python\nprint('hi')\n```\nok?", "run this: a code block ok?"),
    ("the answer is ||42||", "the answer is a spoiler"),
    ("**bold** _it_ ~~gone~~ `code`", "bold it gone code"),
    ("> quoted\n# Heading\n-# small", "quoted Heading small"),
    ("nooooooo!!!!!!", "nooo!"),
    ("good 👍🏽 morning ☀️ 👨‍👩‍👧", "good morning"),
    ("🎉🎉🎉", ""),
    ("!!! ??? ...", ""),
    ("", ""),
])
def test_chat_is_rendered_for_the_ear(message: str, said: str) -> None:
    assert speakable(message) == said


def test_a_wall_of_text_is_cut() -> None:
    assert len(speakable("word " * 2000)) <= MAX_READ_CHARS


@settings(deadline=None)  # the suite runs on shared cores: no per-example time limit
@given(st.text(max_size=3000))
def test_any_message_renders_to_bounded_text_or_nothing(message: str) -> None:
    said = speakable(message)
    assert len(said) <= MAX_READ_CHARS and said == said.strip()
    assert not said or any(char.isalnum() for char in said)


def test_names_are_said_when_the_author_changes() -> None:
    settings = ReadSettings()
    assert with_name("hi", "Bob", previous_author=None, author="1", settings=settings) == "Bob said: hi"
    assert with_name("hi", "Bob", previous_author="1", author="1", settings=settings) == "hi"
    assert with_name("hi", "✨✨", previous_author="2", author="1", settings=settings) == "Someone said: hi"
    assert with_name("hi", "Bob", previous_author="2", author="1", settings=ReadSettings(say_names=False)) == "hi"


@pytest.mark.parametrize("seconds", [9, 61])
def test_max_seconds_stays_in_its_range(seconds: int) -> None:
    with pytest.raises(ValueError):
        ReadSettings(max_seconds=seconds)
