"""The "Clone this voice" message menu: the target message's audio -> a modal for the text -> the /clone flow."""

from __future__ import annotations

import io

import soundfile as sf

from bot.discord.files import to_opus
from tests.clips import sine_clip
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    EPHEMERAL,
    MODAL,
    MODAL_SUBMIT,
    Invoker,
    followup_of,
    message_command,
    message_payload,
    modal_submit,
    snowflake,
    user_payload,
)
from tests.fakes import FakeBackend

VOICE_MESSAGE = to_opus(sine_clip(3.0), "32k")  # what Discord stores a voice message as: OGG/Opus


def target_message(bot, attachments: list[dict]) -> dict:
    return message_payload(snowflake(), "", author=user_payload(snowflake(), "bob"), attachments=attachments,
                           flags=1 << 13 if any("waveform" in a for a in attachments) else 0)


async def open_modal(bot, target: dict, invoker: Invoker | None = None) -> dict:
    response = await bot.response(bot.send(APPLICATION_COMMAND, message_command("Clone this voice", target), invoker))
    assert response.json["type"] == MODAL, response.json
    return response.json["data"]


async def test_voice_message_to_modal_to_result(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    voice = bot.attachment(VOICE_MESSAGE, "voice-message.ogg", "audio/ogg", voice_message=True)
    modal = await open_modal(bot, target_message(bot, [voice]))
    assert modal["title"] == "Clone this voice"
    labels = [row["label"] for row in modal["components"]]
    assert labels == ["Text to speak", "Transcript of the clip (optional)"]
    inputs = [row["component"] for row in modal["components"]]
    assert inputs[0]["required"] is True and inputs[1]["required"] is False
    assert inputs[0]["max_length"] == 4000 and inputs[1]["max_length"] == 1000  # Discord's cap; the transcript's

    submit = bot.send(MODAL_SUBMIT, modal_submit(modal, {"Text to speak": "Spoken from the modal"}))
    followup = await bot.api.wait_for(followup_of(submit))
    [upload] = followup.files
    assert upload.filename == "spoken-from-the-modal.wav"
    assert sf.info(io.BytesIO(upload.data)).samplerate == 24_000
    [call] = backend.calls
    assert call.text == "Spoken from the modal" and call.ref_text is None and call.language == "Auto"
    assert sf.info(io.BytesIO(call.reference)).format == "WAV"  # the Opus voice message, decoded for the backend


async def test_first_audio_attachment_and_transcript(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    document = bot.attachment(b"%PDF-1.7 minutes", "minutes.pdf", "application/pdf")
    song = bot.attachment(sine_clip(2.0), "take1.wav", "audio/x-wav")
    other = bot.attachment(sine_clip(4.0), "take2.wav", "audio/wav")
    modal = await open_modal(bot, target_message(bot, [document, song, other]))
    submit = bot.send(MODAL_SUBMIT, modal_submit(modal, {"Text to speak": "Hi",
                                                         "Transcript of the clip (optional)": "la la la"}))
    await bot.api.wait_for(followup_of(submit))
    [call] = backend.calls
    assert call.ref_text == "la la la"
    assert sf.info(io.BytesIO(call.reference)).duration == 2.0  # take1, not take2
    assert not bot.api.calls_to(lambda c: c.path.endswith("/minutes.pdf"))


async def test_message_without_audio(discord_bot):
    bot = await discord_bot(FakeBackend())
    image = bot.attachment(b"\x89PNG\r\n\x1a\n", "cat.png", "image/png")
    payload = bot.send(APPLICATION_COMMAND, message_command("Clone this voice", target_message(bot, [image])))
    response = await bot.response(payload)
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert "That message has no audio attachment" in response.content


async def test_cooldown_is_told_before_the_modal(discord_bot):
    bot = await discord_bot(FakeBackend(), cooldown_s=60)
    voice = bot.attachment(VOICE_MESSAGE, "voice-message.ogg", "audio/ogg", voice_message=True)
    first = bot.clone(bot.attachment(sine_clip(2.0)), "first")
    await bot.api.wait_for(followup_of(first))
    payload = bot.send(APPLICATION_COMMAND, message_command("Clone this voice", target_message(bot, [voice])))
    response = await bot.response(payload)
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert response.content.startswith("Slow down")


async def test_modal_text_is_validated_by_the_commands_layer(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    voice = bot.attachment(VOICE_MESSAGE, "voice-message.ogg", "audio/ogg", voice_message=True)
    modal = await open_modal(bot, target_message(bot, [voice]))
    # a client that ignores max_length
    submit = bot.send(MODAL_SUBMIT, modal_submit(modal, {"Text to speak": "z" * 5001}))
    response = await bot.response(submit)
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert "5001 characters; the limit is 5000" in response.content
    assert backend.calls == []
