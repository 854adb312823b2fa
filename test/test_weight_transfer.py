"""Weight transfer: dtype/device matching, hot swap, wrappers, mismatches, CUDA when lent."""
import pytest
import torch
import torch.nn as nn

from env_actor.policy.utils.weight_transfer import (load_state_dict_to_module,
                                                    transfer_state_dict, unwrap_module)


def make_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def test_hot_swap_changes_outputs_to_the_new_weights():
    running, other = make_net(0).eval(), make_net(1).eval()
    x = torch.randn(3, 4)
    before = running(x)
    load_state_dict_to_module(running, other.state_dict())
    assert not torch.allclose(before, running(x))
    assert torch.allclose(running(x), other(x))


def test_float_tensors_take_module_dtype_and_int_buffers_keep_theirs():
    target = make_net(0).to(torch.bfloat16)
    load_state_dict_to_module(target, make_net(1).state_dict())
    state = target.state_dict()
    assert state['0.weight'].dtype == torch.bfloat16
    assert state['1.num_batches_tracked'].dtype == torch.int64
    expected = make_net(1).state_dict()['0.weight'].to(torch.bfloat16)
    assert torch.equal(state['0.weight'], expected)


def test_data_parallel_wrapper_is_unwrapped():
    inner = make_net(0)
    wrapped = nn.DataParallel(inner)
    assert unwrap_module(wrapped) is inner
    returned = load_state_dict_to_module(wrapped, make_net(2).state_dict())
    assert returned is inner
    assert torch.equal(inner.state_dict()['2.bias'], make_net(2).state_dict()['2.bias'])


def test_mismatches_are_named():
    target = make_net(0)
    state = make_net(1).state_dict()
    state['0.weight'] = torch.zeros(8, 5)
    with pytest.raises(ValueError, match=r"key '0.weight' has shape \(8, 5\), model expects "
                                         r"\(8, 4\)"):
        load_state_dict_to_module(target, state)
    del state['0.weight']
    with pytest.raises(ValueError, match=r"missing keys \['0.weight'\]"):
        load_state_dict_to_module(target, state)
    with pytest.raises(ValueError, match="'x' holds list"):
        transfer_state_dict({'x': [1]}, torch.device('cpu'))


def test_cpu_transfer_returns_new_tensors():
    source = {'w': torch.ones(2)}
    moved = transfer_state_dict(source, torch.device('cpu'), {'w': torch.float16})
    assert moved['w'].dtype == torch.float16 and source['w'].dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_hot_swap_pinned_non_blocking():
    target = make_net(0).cuda().eval()
    other = make_net(3).eval()
    load_state_dict_to_module(target, other.state_dict())
    x = torch.randn(5, 4)
    torch.testing.assert_close(target(x.cuda()).cpu(), other(x), rtol=1e-4, atol=1e-5)
    assert all(t.device.type == 'cuda' for t in target.state_dict().values())
