"""The tensor-parallel helpers in one process: no group attached means no collective and the
single-process code path; a sharded scoring layer without a group is refused."""

from types import SimpleNamespace

import pytest
import torch

from adapttoken_plugin.distributed import check_ranks_agree, fingerprint, tensor_parallel_of
from adapttoken_plugin.errors import UnsupportedModelError
from adapttoken_plugin.scoring import check_sharded_heads


def test_fingerprint_is_exact_to_the_bit_and_to_the_type():
    x = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(fingerprint(x, 0.5, [1, 2]), fingerprint(x.clone(), 0.5, [1, 2]))
    assert not torch.equal(fingerprint(x), fingerprint(x.nextafter(torch.tensor(9.0))))  # one ulp apart
    assert not torch.equal(fingerprint(x), fingerprint(x.double()))
    assert not torch.equal(fingerprint(x), fingerprint(x.reshape(3, 1)))
    assert not torch.equal(fingerprint(x, 0.5), fingerprint(x, 0.25))
    assert fingerprint(torch.zeros(0, dtype=torch.bfloat16)).shape == (4,)


def test_one_process_needs_no_group():
    model = SimpleNamespace()
    assert tensor_parallel_of(model) is None
    check_ranks_agree(model, "anything", torch.arange(3))  # no process group exists: must not try a collective
    assert check_sharded_heads(model, local_heads=4, total_heads=4) is None


def test_a_sharded_scoring_layer_without_a_group_is_refused():
    with pytest.raises(UnsupportedModelError, match="2 of 4 attention heads"):
        check_sharded_heads(SimpleNamespace(), local_heads=2, total_heads=4)
