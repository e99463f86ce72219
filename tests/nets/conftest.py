import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small nets run far faster on one thread on a shared 2-core machine (no spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
