"""The whole stack, nothing faked but Discord itself: discord.py -> commands -> LocalBackend -> qwen-tts (tiny
random-weight checkpoint). The voice is noise (random weights), but every layer runs for real."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from backend.clients.local import LocalBackend
from backend.settings import BackendSettings
from commands.timing import CONSENT_LINE
from tests.clips import sine_clip
from tests.discord.fake_api import DEFERRED_CHANNEL_MESSAGE, cdn_download, edit_of, followup_of

pytestmark = pytest.mark.slow


async def test_clone_through_the_real_engine(discord_bot, engine):
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)  # type: ignore[call-arg]
    bot = await discord_bot({"local": backend}, job_timeout_s=300)
    attachment = bot.attachment(sine_clip(3.0), "reference.wav")
    payload = bot.clone(attachment, "Hello world.", language="English", ref_text="A steady tone.")

    assert (await bot.response(payload)).json == {"type": DEFERRED_CHANNEL_MESSAGE}
    await bot.api.wait_for(cdn_download(attachment))
    followup = await bot.api.wait_for(followup_of(payload), timeout=300)

    [upload] = followup.files
    assert upload.filename == "hello-world.wav"
    info = sf.info(io.BytesIO(upload.data))
    assert info.samplerate == 24_000 and info.channels == 1 and info.subtype == "PCM_16"
    assert info.frames > 0 and info.frames % 1920 == 0  # whole 80 ms codec frames
    fields = {f["name"]: f["value"] for f in followup.embeds[0]["fields"]}
    assert fields["Language"] == "English" and fields["Backend"].startswith("test")  # the engine's variant
    assert fields["Audio length"] != "n/a" and CONSENT_LINE in followup.content
    await bot.api.wait_for(lambda c: edit_of(payload)(c) and "done in" in c.content)
    steps = [c.content for c in bot.api.calls_to(edit_of(payload))]
    assert any("cloning the voice" in s or "generating speech" in s for s in steps)
    assert any("uploading the audio" in s for s in steps) and "done in" in steps[-1]
