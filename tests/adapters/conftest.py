import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """The tiny models run ~100x faster on one thread than on two when the machine's 2 cores are busy
    (the threads' hand-off dominates a 32-wide layer); restored after each module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
