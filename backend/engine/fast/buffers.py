"""The fast decoder's device state: static KV caches and every tensor a frame reads or writes.

One set per decoder, sized for its largest batch and cache length, so captured CUDA graphs can replay on fixed
addresses; `scratch` gives a look-alike set that compiling and warm-up write instead, so a background thread can
capture while a generation runs on the real set.

Every per-sequence tensor has one row per batch slot, including the frame count (`step`), the cache position
(`position`) and the random seed: each row runs at its own point of its own generation, so a request can take a
free slot while the others go on (`FastDecoder.join`), and a slot is freed by moving the last row into it (`move`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from backend.engine.fast.sampling import SamplerSlots

if TYPE_CHECKING:
    from backend.engine.fast.decoder import FastDecoder


class DecodeBuffers:
    """Every device tensor a frame reads or writes. The decoder owns one set; `scratch` makes a copy whose written
    tensors are fresh (same shapes and strides, so compiled code and graphs made on it fit the real set)."""

    WRITTEN = ("valid", "token", "past_hidden", "seen", "finished", "codes", "step", "position")
    PER_ROW = ("valid", "token", "past_hidden", "rope_delta", "trailing", "seen", "finished", "codes", "step",
               "position", "min_new_tokens", "seed")

    def __init__(self, decoder: FastDecoder, config, rows: int, length: int) -> None:
        dev, dt = decoder.device, decoder.dtype
        hidden = config.hidden_size

        def cache(module, slots: int) -> list[torch.Tensor]:
            """Per layer, keys and values stacked: (2, rows, KV heads, slots, head dim), written in one kernel."""
            cfg = module.config
            shape = (2, rows, cfg.num_key_value_heads, slots, cfg.head_dim)
            # zeros, not empty: masked slots are multiplied by 0 in attention, and 0 * NaN garbage is NaN
            return [torch.zeros(shape, dtype=dt, device=dev) for _ in range(cfg.num_hidden_layers)]

        self.talker_cache = cache(decoder.talker.model, length)
        self.predictor_cache = cache(decoder.predictor.model, decoder.groups)
        self.valid = torch.zeros(rows, length, dtype=torch.bool, device=dev)
        self.token = torch.zeros(rows, dtype=torch.long, device=dev)
        self.past_hidden = torch.zeros(rows, 1, hidden, dtype=dt, device=dev)
        self.rope_delta = torch.zeros(rows, 1, dtype=torch.long, device=dev)
        self.trailing = torch.zeros(rows, length, hidden, dtype=dt, device=dev)
        self.seen = torch.zeros(rows, decoder.vocab, dtype=torch.bool, device=dev)
        self.finished = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.codes = torch.zeros(rows, length, decoder.groups, dtype=torch.long, device=dev)
        self.step = torch.zeros(rows, dtype=torch.long, device=dev)  # frames each row has done
        self.position = torch.zeros(rows, dtype=torch.long, device=dev)  # talker cache slot of each next token
        self.seed = torch.zeros(rows, dtype=torch.long, device=dev)  # 32-bit: each row's noise (`row_noise`)
        self.min_new_tokens = torch.full((rows,), 2, dtype=torch.long, device=dev)
        self.talker_slots = SamplerSlots(rows, dev)
        self.predictor_slots = SamplerSlots(rows, dev)

        self.eos = torch.zeros(1, dtype=torch.long, device=dev)
        self.filler = torch.zeros(1, dtype=torch.long, device=dev)  # what finished rows feed back
        self.suppress = torch.zeros(decoder.vocab, dtype=torch.float32, device=dev)
        self.eos_ban = torch.zeros(decoder.vocab, dtype=torch.float32, device=dev)

        # The code predictor restarts at position 0 every frame: its rotary tables, write slots and causal
        # biases are constants.
        slots = decoder.groups
        positions = torch.arange(slots, device=dev)
        probe = torch.zeros(1, slots, decoder.predictor.config.hidden_size, dtype=dt, device=dev)
        self.predictor_rope = decoder.predictor.model.rotary_emb(probe, positions[None])
        self.predictor_slot = [positions[i:i + 1] for i in range(slots)]
        self.predictor_prefill_slots = positions[:2]
        causal = torch.full((slots, slots), torch.finfo(dt).min, dtype=dt, device=dev).triu(1)
        self.predictor_bias = causal[None, None]  # (1, 1, slots, slots): row p may read slots <= p

    def move(self, source: int, target: int) -> None:
        """Row `source` (everything a frame reads or writes for it) into row `target`."""
        for name in self.PER_ROW:
            tensor = getattr(self, name)
            tensor[target] = tensor[source]
        for kv in self.talker_cache:
            kv[:, target] = kv[:, source]
        self.talker_slots.move(source, target)
        self.predictor_slots.move(source, target)

    def scratch(self) -> DecodeBuffers:
        """A set to compile and warm up on: what a frame writes is new (one K/V tensor serves every layer, as
        nothing reads it back), the rest is shared read-only."""
        copy = object.__new__(DecodeBuffers)
        copy.__dict__.update(self.__dict__)
        for name in self.WRITTEN:
            setattr(copy, name, torch.zeros_like(getattr(self, name)))
        copy.talker_cache = [torch.zeros_like(self.talker_cache[0])] * len(self.talker_cache)
        copy.predictor_cache = [torch.zeros_like(self.predictor_cache[0])] * len(self.predictor_cache)
        return copy
