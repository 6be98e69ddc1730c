"""`/clone` end to end through discord.py: defer, download, progress edits, the WAV follow-up and every failure."""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import pytest
import soundfile as sf

from backend.audio import to_wav
from backend.errors import BackendFailed, BackendUnavailable
from commands.timing import CONSENT_LINE
from tests.clips import sine_clip
from tests.discord.fake_api import (
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_ID,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    Invoker,
    cdn_download,
    delete_of,
    edit_of,
    followup_of,
    slash,
)
from tests.fakes import FakeBackend, NeverAnswers

CLIP = sine_clip(3.0)
CHANNEL_MESSAGES = f"/api/v10/channels/{CHANNEL_ID}/messages"
TIMING_LABELS = ["Text", "Language", "Audio length", "Queue wait", "Voice clone", "Generation", "Decode", "Total",
                 "Real-time factor", "Backend"]


def edits(bot, payload) -> list[str]:
    return [c.content for c in bot.api.calls_to(edit_of(payload))]


async def wait_edit(bot, payload, needle: str):
    return await bot.api.wait_for(lambda c: edit_of(payload)(c) and needle in c.content)


async def ephemeral_error(bot, payload) -> str:
    """The message a refused or failed clone leaves: the immediate response, or the follow-up after a defer."""
    first = await bot.response(payload)
    if first.json["type"] == CHANNEL_MESSAGE:
        assert first.flags == EPHEMERAL
        return first.content
    assert first.json["type"] == DEFERRED_CHANNEL_MESSAGE
    followup = await bot.api.wait_for(lambda c: followup_of(payload)(c) and c.flags == EPHEMERAL)
    assert not followup.files
    await bot.api.wait_for(delete_of(payload))  # the public progress message goes away
    return followup.content


async def test_clone_happy_path(discord_bot):
    backend = FakeBackend(hold=True, audio_seconds=2.0)
    bot = await discord_bot(backend)
    attachment = bot.attachment(CLIP, "my voice.wav")
    started = time.monotonic()
    payload = bot.clone(attachment, "Hello there, General Kenobi!", language="ja", ref_text="a sine tone")

    defer = await bot.response(payload)
    assert time.monotonic() - started < 3  # Discord's acknowledgement window
    assert defer.json == {"type": DEFERRED_CHANNEL_MESSAGE}  # public "thinking", no ephemeral flag
    download = await bot.api.wait_for(cdn_download(attachment))
    assert bot.api.calls.index(defer) < bot.api.calls.index(download)

    call = await backend.next_call()  # the job reached the backend, which reported "generating"
    assert call.request.text == "Hello there, General Kenobi!"
    assert call.request.language == "Japanese" and call.request.ref_text == "a sine tone"
    reference, rate = sf.read(io.BytesIO(call.request.reference))
    assert rate == 16_000 and len(reference) == 48_000  # the clip as downloaded, normalised to WAV
    await wait_edit(bot, payload, "generating speech")
    call.release()

    followup = await bot.api.wait_for(followup_of(payload))
    assert followup.flags == 0  # the result is public
    [upload] = followup.files
    assert upload.filename == "hello-there-general-kenobi.wav"
    audio, rate = sf.read(io.BytesIO(upload.data))
    assert rate == 24_000 and audio.ndim == 1 and len(audio) == 2.0 * 24_000
    assert followup.json["attachments"][0]["filename"] == upload.filename
    assert CONSENT_LINE in followup.content
    [embed] = followup.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert list(fields) == TIMING_LABELS
    assert fields["Language"] == "Japanese" and fields["Audio length"] == "2.00 s"
    assert fields["Backend"] == "fake on Fake GPU" and fields["Voice clone"] == "0.20 s"
    assert fields["Real-time factor"].startswith("0.45")

    final = await wait_edit(bot, payload, "done in")
    steps = edits(bot, payload)
    assert steps[0].startswith("Fetching the reference clip")
    job_id = final.content.split()[1].rstrip(":")
    assert [s for s in steps if "generating speech" in s] == [f"Job {job_id}: generating speech…"]
    assert steps[-1] == final.content  # "uploading the audio…" may be coalesced away: the final state never is
    assert bot.api.calls.index(followup) < bot.api.calls.index(final)
    assert bot.service.queue.stats().done == 1


async def test_queue_position_with_concurrent_jobs(discord_bot):
    backend = FakeBackend(hold=True)
    bot = await discord_bot(backend, max_concurrent_jobs=1)
    first = bot.clone(bot.attachment(CLIP), "first", invoker=Invoker())
    running = await backend.next_call()
    second = bot.clone(bot.attachment(CLIP), "second", invoker=Invoker())
    await wait_edit(bot, second, "queued, position 1 of 1")
    third = bot.clone(bot.attachment(CLIP), "third", invoker=Invoker())
    await wait_edit(bot, third, "queued, position 2 of 2")

    running.release()
    await bot.api.wait_for(followup_of(first))
    await wait_edit(bot, third, "queued, position 1 of 1")  # moved up when the first finished
    (await backend.next_call()).release()
    await bot.api.wait_for(followup_of(second))
    (await backend.next_call()).release()
    result = await bot.api.wait_for(followup_of(third))
    fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
    assert fields["Text"] == "third"
    assert [c.request.text for c in [running]] == ["first"] and len(backend.calls) == 3


async def test_cooldown_refuses_at_once(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend, cooldown_s=60)
    first = bot.clone(bot.attachment(CLIP), "one")
    await bot.api.wait_for(followup_of(first))
    second_clip = bot.attachment(CLIP)
    second = bot.clone(second_clip, "two")
    response = await bot.response(second)
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert response.content.startswith("Slow down: you can start another voice clone in")
    assert not bot.api.calls_to(cdn_download(second_clip))
    assert len(backend.calls) == 1


def _clip(seconds: float, *, amplitude: float = 0.3) -> bytes:
    return to_wav(np.full(int(seconds * 16_000), 0.0, dtype=np.float32), 16_000) if amplitude == 0 \
        else sine_clip(seconds, amplitude=amplitude)


BAD_INPUTS = {
    # name: (attachment bytes, filename, content type, declared size or None, text, options, expected message part)
    "not audio": (b"%PDF-1.7\n" + b"x" * 4000, "voice.wav", "audio/wav", None, "hi", {}, "looks like a PDF file"),
    "html page": (b"<!DOCTYPE html><html>login</html>", "clip.mp3", "audio/mpeg", None, "hi", {}, "web page"),
    "corrupt": (b"OggS" + bytes(range(256)) * 8, "broken.ogg", "audio/ogg", None, "hi", {}, "could not be decoded"),
    "truncated": (CLIP[:100], "cut.wav", "audio/wav", None, "hi", {}, "is 0.00 s long; it must be at least 1 s"),
    "too big": (CLIP, "huge.wav", "audio/wav", 11 * 1024 * 1024, "hi", {}, "11.0 MiB; the limit is 10 MiB"),
    "too long": (sine_clip(31.0), "long.wav", "audio/wav", None, "hi", {}, "the limit is 30 s"),
    "too short": (sine_clip(0.5), "short.wav", "audio/wav", None, "hi", {}, "it must be at least 1 s"),
    "silent": (_clip(3.0, amplitude=0), "quiet.wav", "audio/wav", None, "hi", {}, "is silent"),
    "text too long": (CLIP, "ok.wav", "audio/wav", None, "x" * 5001, {}, "5001 characters; the limit is 5000"),
    "empty text": (CLIP, "ok.wav", "audio/wav", None, "   ", {}, "The text is empty"),
    "transcript too long": (CLIP, "ok.wav", "audio/wav", None, "hi", {"ref_text": "y" * 1001},
                            "The transcript is 1001 characters"),
    "unknown language": (CLIP, "ok.wav", "audio/wav", None, "hi", {"language": "Klingon"},
                         "Unknown language 'Klingon'. Choose one of: Auto, English"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_gets_its_message_and_never_reaches_the_backend(discord_bot, case):
    data, filename, content_type, size, text, options, expected = BAD_INPUTS[case]
    backend = FakeBackend()
    bot = await discord_bot(backend)
    attachment = bot.attachment(data, filename, content_type, size=size)
    payload = bot.clone(attachment, text, **options)
    message = await ephemeral_error(bot, payload)
    assert expected in message
    assert backend.calls == []
    assert bot.service.queue.stats().done == 0


@pytest.mark.parametrize("case", ["too big", "text too long", "unknown language"])
async def test_cheap_refusals_come_before_the_download(discord_bot, case):
    data, filename, content_type, size, text, options, _ = BAD_INPUTS[case]
    bot = await discord_bot(FakeBackend())
    attachment = bot.attachment(data, filename, content_type, size=size)
    response = await bot.response(bot.clone(attachment, text, **options))
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert not bot.api.calls_to(cdn_download(attachment))


@pytest.mark.parametrize(("error", "expected"), [
    (BackendUnavailable("The voice backend is unreachable; try again later."), "is unreachable"),
    (BackendFailed("The backend failed while generating."), "failed while generating"),
])
async def test_backend_failure_names_the_job(discord_bot, error, expected):
    backend = FakeBackend(error=error)
    bot = await discord_bot(backend)
    payload = bot.clone(bot.attachment(CLIP), "hello")
    message = await ephemeral_error(bot, payload)
    assert message.startswith("Job ") and " failed: " in message and expected in message
    job_id = message.split()[1]
    assert len(job_id) == 6 and len(backend.calls) == 1
    assert bot.service.queue.stats().failed == 1


async def test_backend_timeout(discord_bot):
    bot = await discord_bot(NeverAnswers(), job_timeout_s=0.3)
    message = await ephemeral_error(bot, bot.clone(bot.attachment(CLIP), "hello"))
    assert " failed: the backend did not finish within 0.3 s" in message


async def test_unexpected_error_is_logged_with_the_job_id(discord_bot, monkeypatch):
    bot = await discord_bot(FakeBackend())

    def broken_embed(job, title):
        raise RuntimeError("bug in the embed")

    monkeypatch.setattr("bot.discord.job_flow.result_embed", broken_embed)
    payload = bot.clone(bot.attachment(CLIP), "hello")
    message = await ephemeral_error(bot, payload)
    job_id = message.split()[1]
    assert message == f"Job {job_id} failed: the audio could not be delivered; the admins have the log."
    [record] = bot.logged_errors.records
    assert record.levelno == logging.ERROR and record.msg["job_id"] == job_id and record.exc_info
    bot.logged_errors.records.clear()


async def test_oversized_result_is_transcoded(discord_bot):
    bot = await discord_bot(FakeBackend(audio_seconds=8.0))  # 384 kB of WAV
    payload = bot.clone(bot.attachment(CLIP), "A long answer", upload_limit=200_000)
    followup = await bot.api.wait_for(followup_of(payload))
    [upload] = followup.files
    assert upload.filename == "a-long-answer.ogg" and upload.data[:4] == b"OggS"
    assert len(upload.data) <= 200_000
    assert "OGG/Opus" in followup.content and CONSENT_LINE in followup.content
    info = sf.info(io.BytesIO(upload.data))
    assert abs(info.duration - 8.0) < 0.1


async def test_result_too_large_for_the_server_goes_by_dm(discord_bot):
    """The server's upload limit is the interaction's; a DM has its own: a result that fits only there goes there."""
    bot = await discord_bot(FakeBackend(audio_seconds=8.0))
    payload = bot.clone(bot.attachment(CLIP), "A long answer", upload_limit=2_000)
    bot.api.guild_upload_limit = 2_000
    dm = await bot.api.wait_for(lambda c: c.created is not None and c.created.kind == "dm")
    assert dm.files[0].filename == "a-long-answer.wav" and CONSENT_LINE in dm.content
    final = await wait_edit(bot, payload, "done in")
    assert final.content.endswith("sent to you in a direct message.")
    assert not bot.api.calls_to(lambda c: c.files and c.status == 200 and c.created.kind != "dm")


async def test_result_too_large_everywhere_is_kept_and_the_user_told(discord_bot):
    bot = await discord_bot(FakeBackend(audio_seconds=8.0))
    bot.api.guild_upload_limit = bot.api.dm_upload_limit = 2_000
    message = await ephemeral_error(bot, bot.clone(bot.attachment(CLIP), "A long answer", upload_limit=2_000))
    job_id = message.split()[1]
    assert message.startswith(f"Job {job_id} failed: The result is too large to upload here")
    assert message.endswith("It is kept for you: ask an admin for it with the job id.")
    [kept] = bot.bot.undelivered.entries()
    assert kept.job_id == job_id and kept.wav.read_bytes()[:4] == b"RIFF"
    assert bot.service.queue.stats().failed == 1


async def test_upload_refused_by_discord_goes_to_the_channel(discord_bot):
    bot = await discord_bot(FakeBackend())
    payload = bot.clone(bot.attachment(CLIP), "hello")
    bot.api.fail_once(lambda c: followup_of(payload)(c) and bool(c.files), 413)
    posted = await bot.api.wait_for(lambda c: c.path == CHANNEL_MESSAGES and c.method == "POST")
    assert posted.files[0].filename == "hello.wav" and posted.content.startswith(f"<@{bot.invoker.user_id}>")
    mentions = posted.json["allowed_mentions"]
    assert mentions["parse"] == [] and mentions["users"] == [bot.invoker.user_id]  # only the user is pinged
    await wait_edit(bot, payload, "done in")
    assert bot.service.queue.stats().done == 1


async def test_language_autocomplete(discord_bot):
    bot = await discord_bot(FakeBackend())
    focused = slash("clone", [{"name": "text", "type": 3, "value": "hi"},
                              {"name": "language", "type": 3, "value": "ja", "focused": True}])
    response = await bot.response(bot.send(AUTOCOMPLETE, focused))
    japanese = {"name": "Japanese", "value": "Japanese"}
    assert response.json == {"type": AUTOCOMPLETE_RESULT, "data": {"choices": [japanese]}}
    empty = slash("clone", [{"name": "language", "type": 3, "value": "", "focused": True}])
    response = await bot.response(bot.send(AUTOCOMPLETE, empty))
    names = [c["name"] for c in response.json["data"]["choices"]]
    assert names[0] == "Auto" and "English" in names and len(names) == 11


async def test_variant_choice_reaches_that_backend(discord_bot):
    fast, default = FakeBackend("0.6b", gpu="T4"), FakeBackend("fa2")
    bot = await discord_bot({"fa2": default, "0.6b": fast})
    followup = await bot.api.wait_for(followup_of(bot.clone(bot.attachment(CLIP), "hi", variant="0.6b")))
    fields = {f["name"]: f["value"] for f in followup.embeds[0]["fields"]}
    assert fields["Backend"] == "0.6b on T4"
    assert len(fast.calls) == 1 and default.calls == []
