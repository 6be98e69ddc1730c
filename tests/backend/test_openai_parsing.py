"""Fuzzing what the OpenAI-compatible API parses from callers' bytes: `ref_audio` (base64, data: URLs, anything
else) and the multipart voice upload. Whatever arrives, the answer is the decoded clip or a refusal in
OpenAI's shape; never a crash, never more than one clip decoded."""

from __future__ import annotations

import base64
import tempfile

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from backend.intake.limits import AudioLimits
from backend.openai_api.errors import InvalidParam
from backend.openai_api.ref_audio import decode_ref_audio, max_ref_audio_chars
from backend.voice_catalog import CONSENT_ID, DirectoryVoiceCatalog
from backend.web import create_web_app
from tests.backend.test_web import NeverCalled
from tests.clips import sine_clip

LIMITS = AudioLimits(max_bytes=4096)
TOKEN = "fuzz-token-0123456789abcdef"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=7000))
@example("data:audio/wav;base64,")
@example("data:,AAAA")
@example("C:\\clips\\me.wav")
@example("s3://bucket/key")
@example("A" * (max_ref_audio_chars(LIMITS) + 1))
def test_any_ref_audio_text_decodes_or_is_refused(value):
    try:
        decoded = decode_ref_audio(value, LIMITS)
    except InvalidParam as exc:
        assert exc.param == "ref_audio" and exc.code in {"bad_base64", "ref_audio_not_inline", "audio_too_large"}
        return
    assert len(decoded) <= 3 * max_ref_audio_chars(LIMITS) // 4


@FUZZ
@given(st.binary(max_size=LIMITS.max_bytes), st.sampled_from(["", "data:audio/wav;base64,", "DATA:;base64,",
                                                               "data:audio/ogg; codecs=opus;base64,"]),
       st.sampled_from([0, 76]), st.sampled_from(["\n", "\r\n", " "]))
def test_every_clip_round_trips_however_it_is_wrapped(clip, prefix, width, newline):
    encoded = base64.b64encode(clip).decode()
    if width:
        encoded = newline.join(encoded[start:start + width] for start in range(0, len(encoded), width))
    assert decode_ref_audio(prefix + encoded, LIMITS) == clip


_clients: dict[str, TestClient] = {}


def upload_client() -> TestClient:
    """One app for every example: a fresh catalog directory, a service that must never be reached."""
    if "client" not in _clients:
        voices = DirectoryVoiceCatalog(tempfile.mkdtemp(prefix="voicebot-fuzz-"))
        app = create_web_app(NeverCalled(), token=TOKEN, voices=voices, audio_limits=AudioLimits(max_bytes=32 * 1024),
                             max_text_chars=50)
        _clients["client"] = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"},
                                        raise_server_exceptions=False)
    return _clients["client"]


def assert_openai_shape(response) -> None:
    event(f"HTTP {response.status_code}")
    assert response.status_code in {200, 400, 403, 409, 413}, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] != "server_error"


@FUZZ
@given(st.binary(max_size=3000), st.text(alphabet="abcdefXYZ0123-_'\" ", min_size=1, max_size=70))
@example(b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n", "b")
@example(b"--b\r\nContent-Disposition: form-data; name=audio_sample; filename=\"a\r\n\r\n\r\n--b--", "b")
def test_any_multipart_body_is_answered_in_openais_shape(body, boundary):
    response = upload_client().post("/v1/audio/voices", content=body,
                                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_openai_shape(response)


@FUZZ
@given(name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True) | st.text(max_size=80),
       consent=st.sampled_from([CONSENT_ID, "", "yes", f" {CONSENT_ID} "]),
       ref_text=st.none() | st.text(max_size=80), clip=st.sampled_from([b"", b"RIFF", b"\xff\xfb\x90", None]),
       filename=st.text(max_size=40))
def test_any_upload_form_is_saved_or_refused(name, consent, ref_text, clip, filename):
    """Structured forms: every field any text, the clip empty, garbage or a real voice."""
    fields = {"name": name, "consent": consent} | ({"ref_text": ref_text} if ref_text is not None else {})
    files = {"audio_sample": (filename or "clip", sine_clip(seconds=1.2, sample_rate=8000) if clip is None else clip,
                              "audio/wav")}
    response = upload_client().post("/v1/audio/voices", data=fields, files=files)
    assert_openai_shape(response)
    if response.status_code == 200:
        assert response.json()["name"] == name and consent.strip() == CONSENT_ID and clip is None
