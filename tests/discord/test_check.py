"""`/tts-check`: the watermark verdict for an attached clip, privately; bad clips refused before the backend."""

from __future__ import annotations

import pytest

from backend.errors import BackendUnavailable
from backend.schema import WatermarkCheck
from tests.clips import sine_clip
from tests.discord.fake_api import APPLICATION_COMMAND, EPHEMERAL, cdn_download, slash
from tests.fakes import FakeBackend

CLIP = sine_clip(3.0)


def tts_check(bot, attachment):
    data = slash("tts-check", [{"name": "clip", "type": 11, "value": attachment["id"]}], attachments=[attachment])
    return bot.send(APPLICATION_COMMAND, data)


@pytest.mark.parametrize(("verdict", "words"), [
    (WatermarkCheck(watermarked=True, confidence=0.97), "carries voicebot's watermark (detector score 0.97)"),
    (WatermarkCheck(watermarked=False, confidence=0.03), "No voicebot watermark found (detector score 0.03)"),
])
async def test_the_verdict_is_private(discord_bot, verdict, words):
    backend = FakeBackend(verdict=verdict)
    bot = await discord_bot(backend)
    payload = tts_check(bot, bot.attachment(CLIP, "suspicious.wav"))
    assert (await bot.response(payload)).json["data"]["flags"] == EPHEMERAL
    assert words in await bot.answer(payload, "watermark")
    assert backend.checked == [CLIP]


@pytest.mark.parametrize(("data", "size", "words"), [
    (b"%PDF-1.7" + b"x" * 4000, None, "PDF"),
    (sine_clip(0.3), None, "at least 1 s"),
    (CLIP, 17 * 1024 * 1024, "the limit is 16 MiB"),
])
async def test_a_clip_that_cannot_be_checked_never_reaches_the_backend(discord_bot, data, size, words):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    attachment = bot.attachment(data, "clip.wav", size=size)
    assert words in await bot.answer(tts_check(bot, attachment), words)
    assert backend.checked == []
    if size is not None:
        assert not bot.api.calls_to(cdn_download(attachment))


async def test_an_unreachable_backend_is_told(discord_bot):
    backend = FakeBackend(check_error=BackendUnavailable("The voice backend is unreachable; try again later."))
    bot = await discord_bot(backend)
    assert "unreachable" in await bot.answer(tts_check(bot, bot.attachment(CLIP)), "unreachable")
