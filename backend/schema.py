"""Wire types shared by the engine, the Modal app, the HTTP API and the clients.

Pydantic models so the same definition validates a Modal call's dict, an HTTP JSON body and a local call;
audio travels as raw bytes in-process and over Modal, and as base64 in JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SAMPLE_RATE = 24_000
FRAME_SECONDS = 0.08  # Qwen3-TTS 12 Hz codec: 12.5 frames per second of audio
# The seeds `torch.manual_seed` takes (a signed or an unsigned 64-bit integer); outside them it raises, which was
# a 500 for what is the caller's mistake.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
Seed = Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX, description="Random seed; the same seed repeats the audio")]


class CloneRequest(BaseModel):
    """One text to speak in the voice of one reference clip."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    reference: bytes = Field(description="Reference clip as an audio file (WAV/FLAC/OGG), normalised at the edge")
    text: str
    ref_text: str | None = Field(default=None, description="Transcript of the clip; enables ICL cloning")
    language: str = "Auto"
    seed: Seed | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, description="Override the length-derived frame budget")


class Timings(BaseModel):
    """Where the backend's time went, in seconds. `decode_s` is part of `generate_s`'s wall time split out;
    `queue_s` (waiting for a batch to start: the batcher's window and any generation ahead) comes before
    `total_s` and is not part of it."""

    clone_s: float = 0.0
    generate_s: float = 0.0
    decode_s: float = 0.0
    watermark_s: float = Field(default=0.0, description="Marking the clip (`backend.watermark`); part of total_s")
    total_s: float = 0.0
    queue_s: float = 0.0


class CloneResult(BaseModel):
    """Generated audio plus what the bots print under it."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    audio: bytes = Field(description="24 kHz mono 16-bit WAV")
    sample_rate: int = SAMPLE_RATE
    audio_seconds: float
    frames: int
    timings: Timings
    voice_cached: bool = False
    cold_start: bool = False
    variant: str = ""
    gpu: str | None = None
    attention: str = ""
    engine_mode: str = "stock"
    batch_size: int = Field(default=1, description="Requests generated together with this one, itself included")

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per audio second (below 1 is faster than real time)."""
        return self.timings.total_s / self.audio_seconds if self.audio_seconds else float("inf")


Stage = Literal["cloning", "generating"]


class Progress(BaseModel):
    """How far a clone job has got inside the backend: the stage and, while generating, frames against the
    frame budget. The engine reports it; every client hands it to the caller's progress callback; the bots
    render it (`commands.progress`). A pydantic model so the HTTP and Modal transports can carry it as is.

    `frames` and `frame_budget` count the whole generation the request runs in (its batch shares one budget,
    the largest); 0 when unknown (a backend that reports stages only). The budget is an upper bound: speech
    usually ends (EOS) before it, and the job then jumps to done.
    """

    stage: Stage
    frames: int = Field(default=0, ge=0)
    frame_budget: int = Field(default=0, ge=0)

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio generated so far."""
        return self.frames * FRAME_SECONDS

    @property
    def fraction(self) -> float | None:
        """Frames done / budget in [0, 1]; None when the backend does not count frames."""
        if self.frame_budget <= 0:
            return None
        return min(1.0, self.frames / self.frame_budget)


class WatermarkCheck(BaseModel):
    """Whether a clip carries the watermark every generated clip gets (`backend.watermark`). `confidence` is the
    detector's score in [0, 1]; `watermarked` is that score at or above the threshold."""

    watermarked: bool
    confidence: float = Field(ge=0.0, le=1.0)


# The SHA-256 of a reference clip's bytes as sent to the backend (`CloneRequest.reference`), lowercase hex: what
# a bot knows of a saved voice, and what `forget_voices` drops from the backend's voice-prompt cache.
ClipSha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True, strip_whitespace=True)]
MAX_FORGET_ITEMS = 1024  # per call: a user's whole library (25 voices by default) fits many times over


class ForgetVoices(BaseModel):
    """Drop the voice prompts made from these reference clips from the backend's cache (forget-me)."""

    clip_sha256s: list[ClipSha256] = Field(max_length=MAX_FORGET_ITEMS)


class CacheStats(BaseModel):
    size: int
    capacity: int
    hits: int
    misses: int


class GpuMemory(BaseModel):
    allocated_gb: float
    reserved_gb: float
    peak_gb: float
    total_gb: float


class FastGraphs(BaseModel):
    """The fast engine's CUDA graphs: compiled ones, eager ones serving until their compiled graph is swapped in
    (or for good, where compiling failed), and the failures (shape "batch x cache length" -> error)."""

    compiled: int = 0
    eager: int = 0
    capturing: bool = False
    failed: dict[str, str] = Field(default_factory=dict)


class FastBatch(BaseModel):
    """The fast engine's continuous batch: rows decoding and requests waiting now; frames decoded, and per step
    (a frame of the whole batch) how many rows it held on average, since the backend started."""

    active: int = 0
    waiting: int = 0
    max_batch: int = 0
    frames: int = 0
    rows_per_step: float = 0.0


class HealthReport(BaseModel):
    """What `/tts-health` and `GET /health` show an operator."""

    status: str = "ok"
    model: str
    variant: str
    engine_mode: str = "stock"
    fallback_reason: str | None = Field(
        default=None, description="Why the fast engine was asked for (auto on CUDA) but stock runs; None otherwise")
    device: str
    gpu: str | None = None
    attention: str
    dtype: str
    versions: dict[str, str] = Field(default_factory=dict)
    load_s: float
    uptime_s: float
    requests_served: int
    warm: bool = Field(description="False until the first request after loading has run")
    cache: CacheStats
    gpu_memory: GpuMemory | None = None
    languages: list[str] = Field(default_factory=list)
    fast_graphs: FastGraphs | None = Field(default=None, description="The fast engine's CUDA graphs; None: stock")
    fast_batch: FastBatch | None = Field(default=None, description="The fast engine's continuous batch; None: stock")
