"""The whole stack, nothing faked but Slack itself: slack-bolt -> commands -> LocalBackend -> qwen-tts on the
tiny random-weight checkpoint. The audio is noise (random weights) but every layer runs for real."""

from __future__ import annotations

import io
import json

import pytest
import soundfile as sf

from backend.clients.local import LocalBackend
from backend.schema import FRAME_SECONDS, SAMPLE_RATE
from backend.settings import BackendSettings
from commands.settings import CommandSettings
from tests.backend import speech_like
from tests.clips import sine_clip
from tests.slack.conftest import form_values

pytestmark = pytest.mark.slow


async def test_clone_form_to_uploaded_wav_on_the_local_engine(slack, engine):
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)  # type: ignore[call-arg]
    h = await slack(backend, CommandSettings(cooldown_s=0, _env_file=None))
    view = await h.open_form()
    clip = h.fake.host_file("reference.wav", sine_clip(seconds=3.0))
    response = await h.dispatch(h.submission(view, form_values("Hi there.", files=[clip], language="English")))
    assert response.body == ""
    await h.settle(timeout=300)  # the first voice prompt of a session pays librosa's JIT warm-up

    upload = next(c for c in h.fake.calls if c.path.startswith("/upload/"))
    audio, rate = sf.read(io.BytesIO(upload.raw))
    assert rate == SAMPLE_RATE and audio.ndim == 1 and audio.size > 0
    assert audio.size % round(FRAME_SECONDS * SAMPLE_RATE) == 0  # whole 80 ms codec frames
    comment = h.fake.of("files.completeUploadExternal")[0].args["initial_comment"]
    assert "*Backend:* test" in comment and "*Language:* English" in comment
    assert h.fake.of("chat.update")[-1].args["text"].startswith(":white_check_mark:")

    before = len(h.responses())
    await h.dispatch(h.slash("/tts-health", user="UADMIN"))
    await h.fake.wait_for(lambda _: len(h.responses()) > before)
    health = h.responses()[-1]["text"]
    assert "*Attention:* sdpa" in health and "*Jobs:* 1 done, 0 failed" in health


async def test_a_saved_voice_speaks_from_the_cache(slack, engine):
    """Save once, `/say` twice: the second job reuses the backend's voice prompt (the clip is sent byte for
    byte, so its hash is the cache key) and the result says so."""
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)  # type: ignore[call-arg]
    h = await slack(backend, CommandSettings(cooldown_s=0, _env_file=None))
    # a clip of its own: the session's engine already holds the voice prompt of the other test's clip
    await h.save_voice("Narrator", clip=h.fake.host_file("reference.wav", sine_clip(seconds=3.0, amplitude=0.21)))
    for text in ("One.", "Two."):
        await h.dispatch(h.slash("/say", text=f"Narrator: {text}"))
        await h.settle(timeout=300)
    first, second = (c.args["initial_comment"] for c in h.fake.of("files.completeUploadExternal"))
    assert "(cached voice)" not in first and "(cached voice)" in second
    assert first.startswith("<@U1> here is the voice *Narrator*")


@pytest.mark.parametrize("marked", [True, False])
async def test_tts_check_on_the_local_detector(slack, engine, marked):
    """`/tts-check` through the local backend's real detector (PerthNet), on a speech-like clip with the mark
    and without (the tiny checkpoint's noise cannot carry one: `tests.backend.speech_like`)."""
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)  # type: ignore[call-arg]
    h = await slack(backend, CommandSettings(cooldown_s=0, _env_file=None), ack_budget_s=60)
    clip = h.fake.host_file("clip.wav", speech_like(marked=marked))
    view = await h.open_view("/tts-check")
    body = json.loads((await h.dispatch(h.submission(view, {"reference": form_values(files=[clip])["reference"]})))
                      .body)
    verdict = body["view"]["blocks"][0]["text"]["text"]
    expected = "This clip carries voicebot's watermark" if marked else "No voicebot watermark found"
    assert verdict.startswith(f"{':white_check_mark:' if marked else ':grey_question:'} *clip.wav*: {expected}")
