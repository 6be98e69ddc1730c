"""Short speech windows of many callers decoded together: one graph replay (or eager call) per batch of rows.

Streams decode a chunk every few frames, each a window of at most `frames` codes (the chunk behind its left
context). Decoded one call each, the speech decoder was the serving path's bottleneck at 16 concurrent streams.
Rows of a batch do not interact (the decoder's convolutions and attention run along each row's own time axis,
as in stock's padded batches), and padding a row on the right changes nothing before the padding (causal), so a
window decodes to the same audio whichever windows share its batch.

Batching without a timer (a "combining" queue): a caller queues its window; if no decode is running it becomes
the one that runs, taking every window queued so far (up to the largest batch) and handing each caller its
audio; the others wait for theirs. While a batch decodes, new windows queue up and go together in the next. A
lone caller decodes at once, as it did before.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from backend.engine.fast.graphs import GraphFamily, capture_once


@dataclass(eq=False)
class _Window:
    codes: torch.Tensor  # (n, groups) on the host, n <= frames
    audio: np.ndarray | None = None
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.audio is not None or self.error is not None


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    codes: torch.Tensor  # (rows, groups, frames): the input it reads
    wav: torch.Tensor  # (rows, 1, frames * upsample): the output it writes


class ShortWindows:
    """Decodes windows of at most `frames` codes (n x groups) in batches of `rows` sizes."""

    def __init__(self, decoder: torch.nn.Module, device: torch.device, *, frames: int, rows: tuple[int, ...],
                 groups: int, upsample: int, use_graphs: bool) -> None:
        self.decoder = decoder
        self.device = device
        self._family = GraphFamily(device)  # its batch graphs replay one batch at a time
        self.frames, self.rows, self.groups, self.upsample = frames, rows, groups, upsample
        self.use_graphs = use_graphs
        self._queue: deque[_Window] = deque()
        self._done = threading.Condition()
        self._running = False  # a caller is decoding a batch
        self._graphs: dict[int, _Graph] = {}
        self._failed: set[int] = set()

    def capture(self, rows: tuple[int, ...]) -> None:
        """A graph per batch size in `rows` not captured yet; no-op without graphs. Safe while batches decode: the
        capture runs on buffers of its own, and a batch size uses its graph only once it is complete."""
        if self.use_graphs:
            with torch.inference_mode():
                for size in rows:
                    capture_once(self._graphs, self._failed, size, lambda: self._batch_graph(size),
                                 family="speech short rows")

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """The audio of `codes` (n x groups, 0 < n <= frames, any device): n * upsample samples."""
        window = _Window(codes.detach().to("cpu"))
        with self._done:
            self._queue.append(window)
            while not window.finished and self._running:
                self._done.wait()
            if not window.finished:
                self._running = True  # this caller decodes what is queued until its own window is done
        if not window.finished:
            try:
                while not window.finished:
                    self._run_one_batch()
            finally:
                with self._done:
                    self._running = False  # a caller still waiting takes over
                    self._done.notify_all()
        if window.error is not None:
            raise window.error
        return window.audio

    def _run_one_batch(self) -> None:
        """Decode up to the largest batch of queued windows, oldest first; hand each its audio or the error."""
        with self._done:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.rows[-1]))]
        try:
            for window, audio in zip(batch, self._decode_rows([window.codes for window in batch]), strict=True):
                window.audio = audio
        except Exception as error:  # noqa: BLE001 - every caller of this batch hears it
            for window in batch:
                window.error = error
        with self._done:
            self._done.notify_all()

    def _decode_rows(self, windows: list[torch.Tensor]) -> list[np.ndarray]:
        rows = next(size for size in self.rows if size >= len(windows))
        batch = torch.zeros(rows, self.groups, self.frames, dtype=torch.long)
        for row, codes in enumerate(windows):
            batch[row, :, :codes.shape[0]] = codes.T
        with torch.inference_mode():
            graph = self._graphs.get(rows)  # not captured yet, or failed: eager
            if graph is not None:
                graph.codes.copy_(batch)
                graph.graph.replay()
                wav = graph.wav
            else:
                wav = self.decoder(batch.to(self.device))
            host = wav[:, 0].float().cpu().numpy()
        return [host[row, :codes.shape[0] * self.upsample].copy() for row, codes in enumerate(windows)]

    def _batch_graph(self, rows: int) -> _Graph:
        codes = torch.zeros(rows, self.groups, self.frames, dtype=torch.long, device=self.device)
        graph, wav = self._family.capture(lambda: self.decoder(codes))
        return _Graph(graph, codes, wav)
