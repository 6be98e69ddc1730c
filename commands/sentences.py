"""Long texts cut into pieces the engine generates side by side: sentences, packed up to a size.

The sentence boundaries come from `sentencex` (Wikimedia's rule-based segmenter, ~300 languages: abbreviations
such as "Dr." or "z.B." do not end a sentence, and "。！？" do). A sentence longer than a piece may be (a run-on
text, a list without punctuation, a language written without spaces) is cut at the last space before the limit,
else at the limit itself, so no text can make one piece, and so one generation, of unbounded length. Short
sentences are packed together up to the limit: every piece costs a voice prompt and a crossfade, and a few
mid-sized pieces keep the prosody of a paragraph better than many tiny ones.
"""

from __future__ import annotations

import re
import unicodedata

from sentencex import segment

from backend.languages import AUTO, normalize_language

# A piece is one engine request: about 15-20 s of speech, far inside the engine's frame cap (2048 frames).
PIECE_MAX_CHARS = 250

_CODES = {"English": "en", "Chinese": "zh", "Japanese": "ja", "Korean": "ko", "German": "de", "French": "fr",
          "Russian": "ru", "Portuguese": "pt", "Spanish": "es", "Italian": "it"}
_SPACE = re.compile(r"\s")


def language_code(language: str | None, text: str) -> str:
    """The segmenter's language code: the request's language, or for "Auto" a guess from the script of the
    text's letters (kana: Japanese, hangul: Korean, han: Chinese, Cyrillic: Russian, else English rules, which
    hold for the Latin-script languages the model speaks)."""
    name = normalize_language(language)
    if name != AUTO:
        return _CODES[name]
    scripts = {unicodedata.name(char, "").split(" ")[0] for char in text[:2000] if char.isalpha()}
    for script, code in (("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"), ("CJK", "zh"),
                         ("CYRILLIC", "ru")):
        if script in scripts:
            return code
    return "en"


def split_text(text: str, language: str | None = None, *, max_chars: int = PIECE_MAX_CHARS) -> list[str]:
    """`text` as pieces of at most `max_chars` characters, cut at sentence boundaries where it can be; the
    pieces joined with a space give the text back up to whitespace. A text of one short sentence is one piece."""
    pieces: list[str] = []
    current = ""
    for sentence in segment(language_code(language, text), text):
        for part in _cut(sentence.strip(), max_chars):
            joined = f"{current} {part}" if current else part
            if len(joined) <= max_chars:
                current = joined
            else:
                pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _cut(sentence: str, max_chars: int) -> list[str]:
    """A sentence in parts of at most `max_chars`: at the last whitespace before the limit, else at the limit."""
    parts = []
    while len(sentence) > max_chars:
        head = sentence[:max_chars + 1]
        spaces = [match.start() for match in _SPACE.finditer(head)]
        cut = spaces[-1] if spaces and spaces[-1] > 0 else max_chars
        parts.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        parts.append(sentence)
    return parts
