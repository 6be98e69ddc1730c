"""`FastTTS`: qwen-tts's voice-clone API on the fast decode loop, whole clips or streamed audio chunks.

Prompt assembly stays qwen-tts's: `generate_voice_clone` is called as usual with `talker.generate` swapped, on
this model instance only and for the length of the call, for a stub that raises with the arguments it was given
(qwen-tts builds the talker's inputs inside one long `generate` with no hook, and re-implementing it would drift
from the package). Those arguments feed `FastDecoder`; codes become audio through qwen-tts's own speech decoder,
in stock's windows (`speech.py`: on CUDA, replayed graphs).

Two ways to decode: `generate_codes` runs one static batch to its end (the reference the parity tests hold
against stock batches, and the single-generation benchmarks); `submit` and `stream_voice_clone` hand one request
to the continuous batch (`continuous.py`), which serving uses: requests join and leave a running decode.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import structlog
import torch

from backend.engine.fast.continuous import ChunkSink, ContinuousBatch, DecodeJob, FrameSink, row_seed
from backend.engine.fast.decoder import FastDecoder, trim_at_eos
from backend.engine.fast.staging import TalkerInputs
from backend.engine.fast.sampling import DecodeSettings, SamplingConfig
from backend.engine.fast.speech import SpeechDecoder

log = structlog.get_logger(__name__)
SAMPLES_PER_FRAME = 1920
STREAM_CHUNKS = (2, 4, 8, 12)  # frames; each chunk arrives before the audio of the previous one has played


class _Captured(Exception):
    """Carries `talker.generate`'s keyword arguments out of qwen-tts's `generate`."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("talker inputs captured")
        self.kwargs = kwargs


def _capture(**kwargs: Any) -> None:
    raise _Captured(kwargs)


def _settings(kwargs: dict[str, Any]) -> DecodeSettings:
    return DecodeSettings(
        talker=SamplingConfig(kwargs["do_sample"], kwargs["temperature"], kwargs["top_k"], kwargs["top_p"],
                              kwargs["repetition_penalty"]),
        predictor=SamplingConfig(kwargs["subtalker_dosample"], kwargs["subtalker_temperature"],
                                 kwargs["subtalker_top_k"], kwargs["subtalker_top_p"]),
        max_new_tokens=kwargs["max_new_tokens"], eos=kwargs["eos_token_id"], min_new_tokens=kwargs["min_new_tokens"],
    )


class FastTTS:
    """Wraps a loaded `Qwen3TTSModel`; its stock methods keep working on the same weights."""

    def __init__(self, tts: Any, *, max_batch: int = 16, max_len: int = 2560, use_graphs: bool | None = None,
                 compile: bool | None = None) -> None:
        self.tts = tts
        self.decoder = FastDecoder(tts.model, max_batch=max_batch, max_len=max_len, use_graphs=use_graphs,
                                   compile=compile)
        self.batch = ContinuousBatch(self.decoder)
        self.speech = SpeechDecoder(tts.model.speech_tokenizer, use_graphs=self.decoder.use_graphs)
        self._hooking = threading.Lock()  # `talker_inputs` swaps `talker.generate` for the length of a call

    def capture_first_graphs(self, prompt_lengths: tuple[int, ...]) -> None:
        """The prompt prefill's and speech decoder's graphs a lone request of up to `prompt_lengths` slots uses
        (before serving: a fraction of a second each, no Inductor); the rest waits for `capture_other_graphs`."""
        self.decoder.stager.prefill.capture(prompt_lengths)
        self.speech.capture_first()

    def capture_other_graphs(self) -> None:
        """Every prefill and speech graph not captured yet (idempotent): the background thread's first step, safe
        while requests are served; until then the lengths without a graph run eagerly."""
        self.decoder.stager.prefill.capture()
        self.speech.capture()

    def talker_inputs(self, text: str | list[str], language: str | list[str] | None, voice_clone_prompt: Any,
                      **generate_kwargs: Any) -> tuple[TalkerInputs, DecodeSettings]:
        """The exact inputs and sampler settings stock `generate_voice_clone` would decode with."""
        talker = self.tts.model.talker
        with self._hooking:
            talker.generate = _capture
            try:
                self.tts.generate_voice_clone(text=text, language=language, voice_clone_prompt=voice_clone_prompt,
                                              **generate_kwargs)
            except _Captured as captured:
                kwargs = captured.kwargs
            else:
                raise RuntimeError("qwen-tts generated without calling talker.generate; the fast path cannot hook it")
            finally:
                del talker.generate
        inputs = TalkerInputs(kwargs["inputs_embeds"], kwargs["attention_mask"], kwargs["trailing_text_hidden"],
                              kwargs["tts_pad_embed"])
        return inputs, _settings(kwargs)

    def generate_codes(self, text: str | list[str], language: str | list[str] | None, voice_clone_prompt: Any, *,
                       on_frame: Callable[[int], None] | None = None, **generate_kwargs: Any) -> list[torch.Tensor]:
        """Codec frames (n x 16) per text, cut at EOS: what stock `model.generate` returns as `talker_codes_list`.
        `on_frame(done)` follows the decode loop frame by frame (`FastDecoder.frames`)."""
        inputs, settings = self.talker_inputs(text, language, voice_clone_prompt, **generate_kwargs)
        codes = torch.cat(list(self.decoder.frames(inputs, settings, on_frame=on_frame)), dim=1)
        return trim_at_eos(codes, settings.eos)

    def submit(self, text: str, language: str | None, voice_clone_prompt: Any, *, seed: int | None = None,
               chunks: Sequence[int] = (), on_chunk: ChunkSink | None = None, on_frame: FrameSink | None = None,
               **generate_kwargs: Any) -> DecodeJob:
        """One text into the continuous batch; its future gives its codes (n x 16, cut at EOS). A seed samples
        the same codes whatever else decodes alongside (`row_seed`); `chunks`/`on_chunk` stream new codes."""
        inputs, settings = self.talker_inputs([text], [language or "auto"], [voice_clone_prompt], **generate_kwargs)
        job = DecodeJob(inputs, settings, row_seed(seed), chunks=chunks, on_chunk=on_chunk, on_frame=on_frame)
        self.batch.submit(job)
        return job

    def generate_voice_clone(self, text: str | list[str], language: str | list[str] | None,
                             voice_clone_prompt: Sequence[Any], *, on_frame: Callable[[int], None] | None = None,
                             **generate_kwargs: Any) -> tuple[list[np.ndarray], int]:
        """Drop-in for `Qwen3TTSModel.generate_voice_clone(..., voice_clone_prompt=[items])`, plus `on_frame`."""
        prompts = list(voice_clone_prompt)
        codes = self.generate_codes(text, language, prompts, on_frame=on_frame, **generate_kwargs)
        if len(prompts) == 1 and len(codes) > 1:
            prompts = prompts * len(codes)
        return self.codes_to_wavs(codes, prompts)

    def codes_to_wavs(self, codes: list[torch.Tensor], prompts: Sequence[Any]) -> tuple[list[np.ndarray], int]:
        """qwen-tts's own ending: decode with the reference codes in front (ICL), then cut their share off."""
        windows = [torch.cat((p.ref_code.to(c.device), c)) if p.ref_code is not None else c
                   for c, p in zip(codes, prompts)]
        wavs, rate = [self.speech.decode(w) for w in windows], self.speech.sample_rate
        out = []
        for wav, window, prompt in zip(wavs, windows, prompts):
            if prompt.ref_code is not None:
                wav = wav[int(prompt.ref_code.shape[0] / max(window.shape[0], 1) * wav.shape[0]):]
            out.append(wav)
        return out, rate

    def stream_voice_clone(self, text: str, language: str | None, voice_clone_prompt: Any, *,
                           chunks: Sequence[int] = STREAM_CHUNKS, left_context: int = 25,
                           **generate_kwargs: Any) -> Iterator[np.ndarray]:
        """Yield float32 audio chunks as frames are generated (one text, one voice prompt item).

        `chunks` are the chunk sizes in frames (the last repeats): small first for a short time to first audio,
        then larger, since every chunk pays one speech-decoder call.

        Each chunk decodes its new frames behind up to `left_context` earlier frames (the reference clip's last
        codes before the first chunk, as qwen-tts decodes ICL clips behind them) and keeps only the new samples.
        The speech decoder is causal, so chunks match one-shot decoding wherever the window covers its reach.
        """
        started = time.perf_counter()
        arrived: queue.SimpleQueue[torch.Tensor | None] = queue.SimpleQueue()
        job = self.submit(text, language, voice_clone_prompt, chunks=chunks, on_chunk=arrived.put, **generate_kwargs)
        job.future.add_done_callback(lambda _: arrived.put(None))  # after the last chunk
        ref = voice_clone_prompt.ref_code
        context = ref[-left_context:].cpu() if ref is not None and left_context else None  # codes come as host copies
        first_audio = 0.0
        try:
            while (new := arrived.get()) is not None:
                window = new if context is None else torch.cat((context, new))
                audio = self.speech.decode(window)[-new.shape[0] * SAMPLES_PER_FRAME:]
                first_audio = first_audio or time.perf_counter()
                yield audio
                context = window[-left_context:] if left_context else None
            job.future.result()  # the request's own error, if it failed
        finally:
            job.cancel()  # a consumer that stops early frees the slot at the next frame
            _log_stream(job, started, first_audio)


def _log_stream(job: DecodeJob, started: float, first_audio: float) -> None:
    """Where a stream's time to first audio went, from the call: prompt assembled (`queued`), prefilled into a
    slot (`joined`), first codes handed on by the loop, first audio decoded (0 where it never came)."""
    def ms(at: float) -> float | None:
        return round((at - started) * 1000, 1) if at else None

    log.info("fast.stream", prompt_ms=ms(job.queued), joined_ms=ms(job.joined), first_codes_ms=ms(job.first_chunk),
             first_audio_ms=ms(first_audio), frames=job.done, peak_rows=job.peak_rows)
