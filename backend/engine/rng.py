"""Fresh random state for a process that may have been restored from a memory snapshot.

Every container restored from one snapshot starts with the generator states of the moment it was taken, so
unseeded requests would sample the same audio in every container. Requests with a seed set it themselves and are
unaffected.
"""

from __future__ import annotations

import random
import secrets

import numpy as np


def reseed() -> int:
    """Seed Python's, NumPy's and torch's generators (CPU and every CUDA device) from the OS; returns the seed."""
    import torch

    seed = secrets.randbits(63)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device (lazily, if CUDA is not initialised yet)
    return seed
