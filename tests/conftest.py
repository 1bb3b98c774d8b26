"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests use tiny tensors: one intra-op thread is faster than two and never oversubscribes
    a shared CPU. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
