"""The watermark: a marked clip detects, an unmarked one does not, whole or streamed, as WAV or through Opus;
silence and faint noise are never called marked; a clip that cannot be checked is refused for what it is."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from backend.watermark import CHECK_LIMITS, SILENCE_PEAK, StreamMarker, detect, shared_watermarker
from tests.backend import speech_like
from tests.clips import encode, ffmpeg_encode


@pytest.fixture(scope="module")
def marker():
    return shared_watermarker("cpu")


@pytest.fixture(scope="module")
def plain() -> np.ndarray:
    samples, _ = sf.read(io.BytesIO(speech_like(4.0, marked=False)), dtype="float32")
    return samples


def test_a_marked_clip_detects_and_an_unmarked_one_does_not(marker):
    marked, unmarked = detect(speech_like(marked=True), marker), detect(speech_like(marked=False), marker)
    assert marked.watermarked and marked.confidence > 0.8
    assert not unmarked.watermarked and unmarked.confidence < 0.2


def test_the_mark_survives_opus_at_64_kbits(marker, tmp_path):
    """Discord's fallback re-encodes to Opus; the check decodes it through the intake's ffmpeg."""
    opus = [ffmpeg_encode(speech_like(marked=flag), "opus", tmp_path / f"{flag}.ogg") for flag in (True, False)]
    assert [detect(clip, marker).watermarked for clip in opus] == [True, False]


@pytest.mark.parametrize("samples", [1, 540, 1_199, 1_200, 12_345, 24_000 * 3 + 1, 1920 * 7])
def test_any_length_is_marked_and_scored_and_keeps_its_length(marker, plain, samples):
    """The spectrogram needs a window's worth: shorter audio (a stream's last scrap) is padded, then cut back."""
    clip = plain[12_000:12_000 + samples]
    assert marker.mark(clip).shape == (samples,)
    assert 0.0 <= marker.confidence(clip, 24_000) <= 1.0


def test_the_end_of_a_clip_is_marked_not_cut(marker, plain):
    """The spectrogram round trip drops a partial last hop; the clip's last samples must still be its own."""
    clip = plain[:24_000 * 3 + 199]
    tail, marked_tail = clip[-480:], marker.mark(clip)[-480:]
    assert np.abs(tail).max() > 0.01
    assert np.abs(marked_tail - tail).max() < 0.5 * np.abs(tail).max()


@pytest.mark.parametrize("level", [0.0, SILENCE_PEAK / 2])
def test_silence_is_left_alone_and_never_called_marked(marker, level):
    """Below one 16-bit step the detector's score drifts towards the threshold: such a clip counts as silence."""
    faint = (np.random.default_rng(0).uniform(-1, 1, 48_000) * level).astype(np.float32)
    np.testing.assert_array_equal(marker.mark(faint), faint)
    assert marker.confidence(faint, 24_000) == 0.0
    assert not detect(encode(faint, 24_000, subtype="FLOAT"), marker).watermarked


def test_stream_marking_adds_up_to_the_whole_clip_marked(marker, plain):
    """Chunks as the fast engine streams them (2, 4, 8, 12 ... frames): the assembled stream has every sample,
    detects, and departs from marking the whole clip at once by less than -40 dB of its peak (chunks marked
    alone click at their edges, about -17 dB)."""
    stream = StreamMarker(marker)
    sizes = [2, 4, 8, 12, 12, 12] * 2
    edges = np.cumsum([0] + [frames * 1920 for frames in sizes])
    parts = [stream.push(plain[start:end]) for start, end in zip(edges[:-1], edges[1:], strict=True)]
    assembled = np.concatenate([*parts, stream.finish()])
    whole = marker.mark(plain)
    assert assembled.shape == plain.shape
    assert np.abs(assembled - whole).max() < 0.01 * np.abs(whole).max()  # -40 dB, anywhere in the clip
    assert marker.check(assembled, 24_000).watermarked


def test_a_stream_holds_back_only_the_lookahead(marker, plain):
    stream = StreamMarker(marker)
    assert stream.push(plain[:100]).size == 0  # shorter than the lookahead: nothing is final yet
    assert stream.push(plain[100:24_000]).size == 24_000 - 2_400
    assert stream.push(np.zeros(0, dtype=np.float32)).size == 0
    assert stream.finish().size == 2_400
    assert stream.finish().size == 0


@pytest.mark.parametrize(
    ("audio", "code", "words"),
    [
        (b"", "empty_audio", "The clip is empty"),
        (b"\x00" * (CHECK_LIMITS.max_bytes + 1), "audio_too_large", "The clip is 16.0 MiB"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk" * 40, "corrupt_audio", "The clip could not be decoded"),
        (encode(np.zeros(2_400, np.float32) + 0.1, 24_000), "audio_too_short", "The clip is 0.10 s long"),
        (encode(np.zeros(8_000 * 181, np.float32) + 0.1, 8_000), "audio_too_long", "180 s"),
        (encode(np.zeros(96_000 * 2, np.float32) + 0.1, 96_000), "bad_sample_rate", "96000 Hz"),
    ],
)
def test_what_cannot_be_checked_is_refused_for_what_it_is(marker, audio, code, words):
    with pytest.raises(InvalidInput) as raised:
        detect(audio, marker)
    assert raised.value.code == code and words in raised.value.message
    assert "reference clip" not in raised.value.message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_any_bytes_are_checked_or_refused(marker, data):
    """Bytes from outside: a verdict or `InvalidInput`, never another exception."""
    try:
        verdict = detect(data, marker)
    except InvalidInput:
        return
    assert 0.0 <= verdict.confidence <= 1.0
