import os

import pytest
import torch

os.environ.setdefault("OTGEN_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _one_thread():
    """Run every test with one intra-op thread, restoring the previous count afterwards.

    Why: the suite runs on a shared 2-core machine where the tests' small ops are faster
    single-threaded (thread synchronisation and spin-waits dominate; Inception took 21 s vs
    4 s for 2 images with 2 threads), and bit-exact comparisons (same seed -> same numbers,
    across processes and resumes) need a fixed intra-op thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
