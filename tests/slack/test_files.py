"""Which Slack files count as audio."""

from __future__ import annotations

import pytest

from bot.slack.files import first_audio, is_audio


@pytest.mark.parametrize(("file", "audio"), [
    ({"mimetype": "audio/mpeg", "filetype": "mp3"}, True),
    ({"mimetype": "audio/webm", "filetype": "webm", "subtype": "slack_audio"}, True),  # a clip recorded in Slack
    ({"mimetype": "video/mp4", "filetype": "mp4", "subtype": "slack_audio"}, True),
    ({"mimetype": "video/mp4", "filetype": "mp4", "media_display_type": "audio"}, True),
    ({"mimetype": "application/octet-stream", "filetype": "m4a"}, True),
    ({"mimetype": "video/mp4", "filetype": "mp4", "media_display_type": "video"}, True),  # decoded by content
    ({"mimetype": "image/png", "filetype": "png"}, False),
    ({"mimetype": "text/plain", "filetype": "text"}, False),
    ({"mimetype": "application/pdf", "filetype": "pdf"}, False),
])
def test_is_audio(file, audio):
    assert is_audio(file) is audio


def test_first_audio_skips_other_files():
    png, wav = {"id": "F1", "mimetype": "image/png"}, {"id": "F2", "mimetype": "audio/wav"}
    assert first_audio([png, wav]) is wav
    assert first_audio([png]) is None and first_audio(None) is None
