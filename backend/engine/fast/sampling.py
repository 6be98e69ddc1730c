"""Token selection on the device, written so a CUDA graph can capture it.

The stock path runs Hugging Face logits processors on the host's schedule; here every knob is a device tensor
of one row per sequence, so one captured graph serves any temperature / top-k / top-p / penalty (and rows of
one batch may differ). The arithmetic follows transformers 4.57's processors (repetition penalty, then
temperature, top-k, top-p) so greedy decoding picks exactly the stock token. Sampling draws with the
exponential-race trick (argmax of p / Exp(1)), which samples from p like `torch.multinomial` but is graph-safe
and needs no host sync; it does not reproduce the stock path's random stream, only its distribution.

The Exp(1) noise of the decode loop is counter-based (`row_noise`): a hash of the row's seed, the draw's number
within that row's generation and the token id. A row's random numbers therefore depend on nothing else in the
batch: a seeded request samples the same codes whichever requests join or leave around it, and a CUDA graph
needs no generator state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    """One sampler's settings, as qwen-tts names them (`do_sample`, or the `subtalker_*` set)."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class DecodeSettings:
    """The talker's and the code predictor's samplers plus the frame budget (stock `generate` semantics)."""

    talker: SamplingConfig
    predictor: SamplingConfig
    max_new_tokens: int
    eos: int
    min_new_tokens: int = 2  # qwen-tts hard-codes 2


class SamplerSlots:
    """Per-row sampler settings in device tensors (shape `(rows, 1)`), filled before each generation."""

    def __init__(self, rows: int, device: torch.device) -> None:
        self.do_sample = torch.zeros(rows, 1, dtype=torch.bool, device=device)
        self.temperature = torch.ones(rows, 1, dtype=torch.float32, device=device)
        self.top_k = torch.ones(rows, 1, dtype=torch.long, device=device)  # valid in graph warm-up
        self.top_p = torch.ones(rows, 1, dtype=torch.float32, device=device)
        self.penalty = torch.ones(rows, 1, dtype=torch.float32, device=device)

    def fill(self, config: SamplingConfig, vocab: int, rows: slice = slice(None)) -> None:
        """Write one setting into `rows` (default every row; top-k <= 0 means no top-k, as in transformers)."""
        self.do_sample[rows] = config.do_sample
        self.temperature[rows] = config.temperature if config.do_sample else 1.0
        self.top_k[rows] = min(config.top_k, vocab) if config.top_k > 0 else vocab
        self.top_p[rows] = config.top_p
        self.penalty[rows] = config.repetition_penalty

    def view(self, rows: slice) -> SamplerSlots:
        """The same slots seen from `rows` (views, not copies): row `rows.start` reads as row 0."""
        copy = object.__new__(SamplerSlots)
        copy.__dict__.update({name: tensor[rows] for name, tensor in self.__dict__.items()})
        return copy

    def move(self, source: int, target: int) -> None:
        """Row `source`'s settings into row `target` (a batch compacting as a row leaves)."""
        for tensor in self.__dict__.values():
            tensor[target] = tensor[source]


_MASK = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2**27: a 32-bit value times it stays inside int64
_GOLDEN = 0x9E3779B1


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) in int64 arithmetic, exact on every device."""
    x = ((x >> 16) ^ x) * _MIX & _MASK
    x = ((x >> 16) ^ x) * _MIX & _MASK
    return (x >> 16) ^ x


def row_noise(seeds: torch.Tensor, counters: torch.Tensor, vocab: int) -> torch.Tensor:
    """Exp(1) noise (rows, vocab) in float32, a pure function of each row's 32-bit seed (rows,), its draw
    counter (rows,) and the token id: what `choose_tokens` races the probabilities against."""
    base = _mix(_mix(seeds & _MASK) ^ (counters & _MASK))[:, None]
    ids = torch.arange(vocab, device=seeds.device, dtype=torch.long) * _GOLDEN & _MASK
    bits = _mix(base ^ ids) >> 8  # 24 bits: exactly representable in float32
    return -torch.log((bits.to(torch.float32) + 0.5) * (1.0 / (1 << 24)))


def choose_tokens(logits: torch.Tensor, slots: SamplerSlots, rows: int, *, ban: torch.Tensor | None = None,
                  seen: torch.Tensor | None = None, select: Callable | None = None,
                  noise: torch.Tensor | None = None) -> torch.Tensor:
    """Pick one token per row from float32 `logits` (rows, vocab); no host sync, fixed shapes.

    `ban` is an additive bias (0 or -inf; suppressed ids, EOS before `min_new_tokens`); `seen` marks ids already
    generated for the repetition penalty. The random draw happens here, outside `select` (`select_tokens`, or a
    compiled copy of it), so compiling never changes which random numbers a seed produces. `noise` is that draw
    when the caller makes it (the decode loop: `row_noise`); else it comes from torch's default generator.
    """
    if noise is None:
        noise = torch.empty_like(logits).exponential_()
    return (select or select_tokens)(logits, noise, slots, rows, ban, seen)


def select_tokens(logits: torch.Tensor, noise: torch.Tensor, slots: SamplerSlots, rows: int,
                  ban: torch.Tensor | None, seen: torch.Tensor | None) -> torch.Tensor:
    """`choose_tokens` given its Exp(1) `noise`: pure tensor arithmetic, fit for torch.compile."""
    if seen is not None:
        penalty = slots.penalty[:rows]
        penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
        logits = torch.where(seen, penalized, logits)
    if ban is not None:
        logits = logits + ban
    greedy = logits.argmax(dim=-1)

    scaled = logits / slots.temperature[:rows]
    ordered, order = scaled.sort(dim=-1, descending=True)
    kth = ordered.gather(-1, slots.top_k[:rows] - 1)
    ordered = ordered.masked_fill(ordered < kth, float("-inf"))
    probs = ordered.softmax(dim=-1)
    # transformers' top-p drops a token when the mass strictly above it already reaches top_p; it is skipped
    # entirely at top_p == 1.0, which the last condition mirrors (float cumsums can reach 1.0 early).
    top_p = slots.top_p[:rows]
    drop = ((probs.cumsum(dim=-1) - probs) >= top_p) & (top_p < 1.0)
    ordered = ordered.masked_fill(drop, float("-inf"))
    probs = ordered.softmax(dim=-1)
    race = probs / noise
    sampled = order.gather(-1, race.argmax(dim=-1, keepdim=True)).squeeze(-1)
    return torch.where(slots.do_sample[:rows].squeeze(-1), sampled, greedy)


def banned_choice(ban: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Rows whose token is one the sampler bans (`ban` (rows, vocab): 0 or -inf). Only non-finite logits draw one
    (NaN defeats the -inf ban; random bf16 weights reach it on long generations): such a row is finished there,
    as if it had sampled EOS, and feeds the filler. Otherwise a special token (an id past the 2,048 codec codes)
    became a code, and the speech decoder's codebook lookup hit a device-side assert that kills the process's
    CUDA context, every request with it (seen under load on one H200)."""
    return ban.gather(-1, chosen[:, None]).squeeze(-1) < 0
