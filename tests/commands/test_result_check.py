"""`check_result` against whatever bytes a backend may send: a clean result or `bad_audio`, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import BackendFailed
from commands.result_check import MAX_AUDIO_BYTES, check_result
from tests.fakes import BAD_ANSWERS, fake_result

RIFF = b"RIFF\x24\x0f\x00\x00WAVE"


def test_a_real_result_passes_unchanged():
    result = fake_result(3.2)
    assert check_result(result) is result


@pytest.mark.parametrize("name", list(BAD_ANSWERS))
def test_every_broken_answer_is_bad_audio_with_a_reason(name):
    with pytest.raises(BackendFailed) as failed:
        check_result(BAD_ANSWERS[name]())
    assert failed.value.code == "bad_audio" and failed.value.detail


def test_an_oversized_answer_is_refused_before_it_is_parsed():
    huge = fake_result(1.0).model_copy(update={"audio": RIFF + bytes(MAX_AUDIO_BYTES)})
    with pytest.raises(BackendFailed, match="unusable audio") as failed:
        check_result(huge)
    assert "limit" in failed.value.detail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.booleans(), st.floats(allow_nan=True, allow_infinity=True))
def test_arbitrary_bytes_never_escape_as_anything_but_bad_audio(payload, with_header, seconds):
    audio = (RIFF + payload) if with_header else payload
    answer = fake_result(1.0).model_copy(update={"audio": audio, "audio_seconds": seconds})
    try:
        checked = check_result(answer)
    except BackendFailed as failed:
        assert failed.code == "bad_audio"
    else:  # hypothesis built a real 24 kHz mono PCM16 WAV of the reported length
        assert checked is answer


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), st.integers(0, 2_000))
def test_a_valid_wav_header_with_mangled_chunks_is_handled(cut, junk):
    """Real audio, truncated at any point or followed by junk: accepted only while its length still matches."""
    audio = fake_result(1.0).audio
    mangled = audio[: len(audio) - cut * 97] + bytes(junk)
    try:
        check_result(fake_result(1.0).model_copy(update={"audio": mangled}))
    except BackendFailed as failed:
        assert failed.code == "bad_audio"
