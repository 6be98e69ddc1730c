"""Containers restored from one memory snapshot sample differently once the snap=False hook has run."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import torch

from backend import modal_app
from backend.engine import Engine, EngineConfig


def restore(state) -> None:
    torch.set_rng_state(state[0])
    np.random.set_state(state[1])
    random.setstate(state[2])


def draw() -> tuple:
    return tuple(torch.rand(4).tolist()), tuple(np.random.rand(2)), random.random()


def after_restore_hook(container) -> None:
    """The Modal classes' `@modal.enter(snap=False)` hook, run as Modal runs it after a restore."""
    modal_app._Service.__dict__["start"]._get_raw_f()(container)


def test_two_containers_restored_from_one_state_sample_differently():
    torch.manual_seed(1234)
    snapshot = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    restore(snapshot)
    without_hook = draw()
    restore(snapshot)
    assert draw() == without_hook  # what a restore gives every container without the hook

    container = SimpleNamespace(engine=Engine(EngineConfig()))  # not loaded: no background capture to start
    samples = []
    for _ in range(2):
        restore(snapshot)
        after_restore_hook(container)
        samples.append(draw())
    assert all(sample[i] != without_hook[i] for sample in samples for i in range(3))
    assert all(samples[0][i] != samples[1][i] for i in range(3))


def test_a_seed_still_reproduces_after_reseeding():
    torch.manual_seed(7)
    expected = torch.rand(3)
    after_restore_hook(SimpleNamespace(engine=Engine(EngineConfig())))
    torch.manual_seed(7)
    assert torch.equal(torch.rand(3), expected)
