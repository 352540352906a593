"""Shared test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: the suite shares 2 cores, and tiny models gain nothing from more."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
