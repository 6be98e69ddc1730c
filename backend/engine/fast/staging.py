"""Prompt prefill off the decode loop: a request's prompt is run through the talker on the request's own thread
(on CUDA, on a side stream), and the decode loop only copies the result into a free slot at a frame boundary.

Prefilling inside the loop stalled every running row for the whole eager talker forward of each newcomer (a
few hundred kernel launches and the prompt's attention): under steady arrivals most of the loop's time went to
other requests' prompts. Staged, the forward overlaps the running frames (the GPU has room beside a decode
step, and the host work runs on another thread), and what the loop still does per newcomer is a few dozen copy
kernels (`FastDecoder.install`).

A one-row prompt is prefilled by `ChunkedPrefill` (prefill.py: the decode frames' layer code, a replayed graph
per 64-token chunk on CUDA), since the stock forward is mostly kernel launches that hold the GIL (46 ms for a
187-character prompt on one H200, `bench_load.py` micro costs); a padded batch (the static path) takes the stock
forward. One prompt is staged at a time (`MAX_STAGING`: the chunk graphs share their buffers); the others wait
for their turn on their own threads, not in the loop. Each staged prompt holds its own copy of its K/V (about
115 KB per prompt token for the 1.7B model) until it joins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

if TYPE_CHECKING:
    from backend.engine.fast.prefill import ChunkedPrefill

MAX_STAGING = 1  # prompts prefilled at once


@dataclass
class TalkerInputs:
    """What stock `Qwen3TTSForConditionalGeneration.generate` hands to `talker.generate` (left-padded batch)."""

    inputs_embeds: torch.Tensor  # (B, L0, C)
    attention_mask: torch.Tensor  # (B, L0) 1 = token, 0 = left padding
    trailing_text_hidden: torch.Tensor  # (B, T, C) text still to feed, one row per frame
    tts_pad_embed: torch.Tensor  # (1, 1, C) fed once the text has run out


@dataclass
class StagedPrompt:
    """A prompt after the talker's forward: its K/V per layer, mask, text and first-token logits, one row per
    sequence. `ready` (CUDA) is recorded on the stream that computed it: whoever copies from it waits for it."""

    keys: list[torch.Tensor]  # per layer: (rows, kv heads, length, head dim)
    values: list[torch.Tensor]
    inputs: TalkerInputs
    logits: torch.Tensor  # (rows, vocab) float32, for the first token
    past_hidden: torch.Tensor
    ready: torch.cuda.Event | None = None

    @property
    def length(self) -> int:
        return self.inputs.inputs_embeds.shape[1]

    def tensors(self) -> list[torch.Tensor]:
        """Everything a copy reads: `release` marks them used by the copying stream."""
        i = self.inputs
        return [*self.keys, *self.values, i.inputs_embeds, i.attention_mask, i.trailing_text_hidden,
                i.tts_pad_embed, self.logits, self.past_hidden]

    def release(self, stream: torch.cuda.Stream | None) -> None:
        """After `stream` was given copies of these tensors: their memory is not reused before it ran them."""
        if stream is not None:
            for tensor in self.tensors():
                tensor.record_stream(stream)


class Stager:
    """Prefills prompts, at most `MAX_STAGING` at once, each on a side stream on CUDA: one row through `prefill`
    (`ChunkedPrefill`: replayed graphs on CUDA), anything else through the stock talker forward."""

    def __init__(self, talker: torch.nn.Module, device: torch.device, prefill: ChunkedPrefill) -> None:
        self.talker = talker
        self.device = device
        self.prefill = prefill
        self._turns = threading.BoundedSemaphore(MAX_STAGING)
        # One stream for every prefill: returning from `stage` does not wait for the GPU, so the next prefill's
        # writes to the shared chunk buffers must queue behind the previous prefill's reads. On a stream of its
        # own each, the next prompt's positions reached a running replay of a shorter cache length: K/V written
        # past that cache (device-side index asserts under load, one H200).
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def stage(self, inputs: TalkerInputs) -> StagedPrompt:
        """`inputs` prefilled, for a slot of the continuous batch."""
        with self._turns, torch.inference_mode():
            side = self._stream
            if side is None:
                return self._run(inputs)
            side.wait_stream(torch.cuda.current_stream(self.device))  # the inputs were made there
            with torch.cuda.stream(side):
                staged = self._run(inputs)
                staged.ready = torch.cuda.Event()
                staged.ready.record(side)
            return staged

    def _run(self, inputs: TalkerInputs) -> StagedPrompt:
        return self.prefill.run(inputs) if self.prefill.fits(inputs) else self._forward(inputs)

    def _forward(self, inputs: TalkerInputs) -> StagedPrompt:
        """The stock talker forward (a padded batch: the static path; or a prompt `ChunkedPrefill` cannot take)."""
        embeds, mask = inputs.inputs_embeds, inputs.attention_mask
        cache = DynamicCache()
        out = self.talker(inputs_embeds=embeds, attention_mask=mask, past_key_values=cache, use_cache=True,
                          cache_position=torch.arange(embeds.shape[1], device=embeds.device),
                          trailing_text_hidden=inputs.trailing_text_hidden, tts_pad_embed=inputs.tts_pad_embed)
        return StagedPrompt(keys=[layer.keys for layer in cache.layers], values=[layer.values for layer in cache.layers],
                            inputs=inputs, logits=out.logits[:, -1].float(), past_hidden=out.past_hidden)
