"""Shared fixtures for the reference tests."""

from __future__ import annotations

import pytest
import torch

from reference import Config, SimpleKimiK2

# The test models are tiny: extra threads cost more than they save, and on a shared 2-core
# machine their spin-waits slow each small matmul down a hundredfold.
torch.set_num_threads(1)


def small_gqa() -> Config:
    """The lesson's architecture (GQA, dense SwiGLU) at a size that runs in milliseconds."""
    return Config.lesson().with_(
        name="small GQA", vocab_size=97, hidden_size=64, num_layers=2, num_heads=8, num_kv_heads=2, intermediate_size=96
    )


@pytest.fixture(params=["tiny", "small-gqa"])
def model(request: pytest.FixtureRequest) -> SimpleKimiK2:
    """A seeded, runnable model of each attention kind, in eval mode."""
    torch.manual_seed(0)
    cfg = Config.tiny() if request.param == "tiny" else small_gqa()
    return SimpleKimiK2(cfg).eval()
