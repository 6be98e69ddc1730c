"""Speech decoding for the fast engine: codes to 24 kHz audio through qwen-tts's speech-tokenizer decoder, with
the windows stock decoding uses, each right-padded to one of a few fixed lengths so that on CUDA a captured
graph per length replays it.

Why: run eagerly, the decoder is a long chain of small kernels, about 40 ms of launches per call whatever its
length (one H200: 42 ms for a 2-frame stream chunk, 39 ms for 160 frames; `bench_load.py` micro costs), all of
it holding the GIL. Under load, decoding every stream's chunks and every finished clip that way starved the
threads that feed the continuous batch: the batch ran at about 2 rows while requests waited. A graph replay is
one launch.

Right padding changes nothing before it: every part of the decoder is causal (causal convolutions, transposed
convolutions trimmed on the right, causal attention). Stock relies on the same thing when it decodes a padded
batch (`Qwen3TTSTokenizerV2Model.decode`), and pads with code 0 as we do. Windows follow stock's
`chunked_decode`: 300 frames behind up to 25 frames of context. The window graphs share a cuBLAS workspace
(`graphs.GraphFamily`), so one long decode runs at a time; a length past the largest window, a CPU run, a graph
not captured yet or a capture that failed decodes eagerly (a request never waits for a capture).

Capturing all nine graphs took 2.6-4.2 s of a new container's start (one H200, `bench_coldstart.py`), so before
serving only what a lone request needs is captured (`capture_first`: a stream's chunk, a clip of up to 300
frames); the background thread captures the rest (`capture`) while requests are served.

Short codes (a stream's chunk behind its context: at most `WINDOW_FRAMES[0]` frames) are decoded together:
one graph replay decodes the windows of every stream that is waiting (rows of one batch; rows are independent,
as in stock's padded batches). One replay a chunk had capped serving at about 150 stream chunks a second
(6.4 ms each on one H200), fewer than 16 concurrent streams need. There is no timer: whoever finds the decoder
idle decodes everything queued meanwhile (`speech_batch.py`), so a lone stream waits for nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.engine.fast.graphs import GraphFamily, capture_once
from backend.engine.fast.speech_batch import ShortWindows

WINDOW_FRAMES = (40, 80, 160, 325)  # padded lengths: a stream chunk behind its context fits the first
SHORT_ROWS = (1, 2, 4, 8, 16)  # batch sizes of the short windows' graphs: streams decoded in one replay
CHUNK_FRAMES = 300  # stock `chunked_decode`: new frames per window
CONTEXT_FRAMES = 25  # and the frames of context before them


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    codes: torch.Tensor  # (1, groups, frames) the input it reads
    wav: torch.Tensor  # (1, 1, frames * upsample) the output it writes


class SpeechDecoder:
    """Decodes codes (frames x 16) to float32 audio, one call at a time; `capture` prepares the graphs."""

    def __init__(self, tokenizer: Any, *, use_graphs: bool) -> None:
        model = tokenizer.model
        self.decoder = model.decoder
        self.upsample = int(model.get_decode_upsample_rate())
        self.sample_rate = int(model.get_output_sample_rate())
        self.groups = int(model.decoder.config.num_quantizers)
        self.codebook = int(model.decoder.config.codebook_size)
        self.device = next(model.decoder.parameters()).device
        self._family = GraphFamily(self.device)  # its window graphs replay under `_lock`, one at a time
        self.use_graphs = use_graphs and self.device.type == "cuda"
        self._lock = threading.Lock()
        self._graphs: dict[int, _Graph] = {}
        self._failed: set[int] = set()
        self._short = ShortWindows(self.decoder, self.device, frames=WINDOW_FRAMES[0], rows=SHORT_ROWS,
                                   groups=self.groups, upsample=self.upsample, use_graphs=self.use_graphs)

    def capture_first(self) -> None:
        """Capture what a lone request decodes: a stream's chunk (one short row) and a whole clip of up to 300
        frames (the largest window); the rest decodes eagerly until `capture` has run."""
        self._capture(WINDOW_FRAMES[-1:], SHORT_ROWS[:1])

    def capture(self) -> None:
        """Capture every window length and every short batch not captured yet (idempotent). Safe while requests
        decode: a capture runs the decoder on buffers of its own and records without replaying anything, and a
        graph is used only once it is complete."""
        self._capture(WINDOW_FRAMES, SHORT_ROWS)

    def _capture(self, windows: tuple[int, ...], rows: tuple[int, ...]) -> None:
        if not self.use_graphs:
            return
        with torch.inference_mode():
            for frames in windows:
                capture_once(self._graphs, self._failed, frames, lambda: self._window_graph(frames),
                             family="speech window")
        self._short.capture(rows)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """The audio of `codes` (n x 16, on any device), n * upsample samples: what stock `decode` gives for it."""
        codes = codes.clamp(min=0)  # stock clamps its -1 padding too
        if codes.numel() and int(codes.max()) >= self.codebook:  # on the GPU: a device-side assert, process-wide
            raise ValueError(f"codes up to {int(codes.max())} are past the speech codebook's {self.codebook} entries")
        if 0 < codes.shape[0] <= WINDOW_FRAMES[0]:
            return self._short.decode(codes)
        codes = codes.to(self.device).T[None]  # (1, groups, n)
        total = codes.shape[-1]
        pieces = []
        with self._lock, torch.inference_mode():
            start = 0
            while start < total:
                end = min(start + CHUNK_FRAMES, total)
                context = min(CONTEXT_FRAMES, start)
                wav = self._window(codes[..., start - context:end])
                pieces.append(wav[context * self.upsample:].float().cpu().numpy())
                start = end
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def _window(self, codes: torch.Tensor) -> torch.Tensor:
        """One window's audio (frames * upsample samples), padded on the right to the next window length."""
        frames = codes.shape[-1]
        padded = next((length for length in WINDOW_FRAMES if length >= frames), frames)
        samples = frames * self.upsample
        graph = self._graphs.get(padded)
        if graph is not None:
            graph.codes.zero_()
            graph.codes[..., :frames].copy_(codes)
            graph.graph.replay()
            return graph.wav[0, 0, :samples]
        window = torch.zeros(1, self.groups, padded, dtype=codes.dtype, device=self.device)
        window[..., :frames] = codes
        return self.decoder(window)[0, 0, :samples]

    def _window_graph(self, frames: int) -> _Graph:
        codes = torch.zeros(1, self.groups, frames, dtype=torch.long, device=self.device)
        graph, wav = self._family.capture(lambda: self.decoder(codes))
        return _Graph(graph, codes, wav)
