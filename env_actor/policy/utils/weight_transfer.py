"""Move a CPU state dict onto a module's device and dtype, e.g. to hot-swap weights.

On CUDA the CPU tensors are pinned and copied with `non_blocking=True`; the copy stream is
synchronised before the weights are loaded, so the module never reads half-copied weights.
Floating-point tensors take the dtype of the module's matching tensor (a float32 checkpoint
loads into a bf16 model); integer buffers keep their dtype. DataParallel /
DistributedDataParallel wrappers are unwrapped.
"""
from typing import Any, Mapping, Optional

import torch
import torch.nn as nn


def describe_mismatch(expected: Mapping[str, torch.Tensor], state: Mapping[str, Any],
                      strict: bool = True) -> Optional[str]:
    """Why `state` does not fit a module whose state dict is `expected`, or None.

    Names missing/unexpected keys (when strict), non-tensor values and shape mismatches.
    """
    if strict:
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            return f'missing keys {missing}, unexpected keys {unexpected}'
    for key, tensor in state.items():
        if key not in expected:
            continue
        if not isinstance(tensor, torch.Tensor):
            return f'key {key!r} is a {type(tensor).__name__}, not a tensor'
        if tuple(tensor.shape) != tuple(expected[key].shape):
            return (f'key {key!r} has shape {tuple(tensor.shape)}, model expects '
                    f'{tuple(expected[key].shape)}')
    return None


def unwrap_module(module: nn.Module) -> nn.Module:
    """Return the wrapped module of DataParallel / DistributedDataParallel, else `module`."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(module, wrappers):
        module = module.module
    return module


def transfer_state_dict(state_dict: Mapping[str, torch.Tensor], device: torch.device,
                        dtypes: Optional[Mapping[str, torch.dtype]] = None
                        ) -> dict[str, torch.Tensor]:
    """Copy tensors to `device` (pinned + non_blocking for CUDA), casting floats to `dtypes`.

    Args:
        state_dict: tensors, usually on the CPU.
        device: target device.
        dtypes: optional key -> dtype for floating tensors.
    Returns:
        A new dict on `device`, synchronised (safe to read immediately).
    Raises:
        ValueError: a value is not a tensor.
    """
    device = torch.device(device)
    to_cuda = device.type == 'cuda'
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f'state dict key {key!r} holds {type(tensor).__name__}, '
                             f'not a tensor')
        target_dtype = tensor.dtype
        if dtypes is not None and key in dtypes and tensor.is_floating_point():
            target_dtype = dtypes[key]
        source = tensor
        if to_cuda and tensor.device.type == 'cpu':
            source = tensor.contiguous().pin_memory()
        out[key] = source.to(device=device, dtype=target_dtype, non_blocking=to_cuda)
    if to_cuda:
        torch.cuda.synchronize(device)
    return out


def load_state_dict_to_module(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                              strict: bool = True) -> nn.Module:
    """Load a (CPU) state dict into `module` wherever it lives, matching device and dtype.

    Args:
        module: target module, possibly DDP/DataParallel-wrapped, on any device.
        state_dict: weights, usually on the CPU.
        strict: require an exact key match (the default, as in build_policy).
    Returns:
        The unwrapped module, with the new weights.
    Raises:
        ValueError: key or shape mismatch (names the key and both shapes).
    """
    target = unwrap_module(module)
    current = target.state_dict()
    problem = describe_mismatch(current, state_dict, strict)
    if problem is not None:
        raise ValueError(f'state dict mismatch: {problem}')
    reference = next(iter(current.values()), None)
    device = reference.device if reference is not None else torch.device('cpu')
    dtypes = {key: value.dtype for key, value in current.items()}
    moved = transfer_state_dict({k: v for k, v in state_dict.items() if k in current},
                                device, dtypes)
    target.load_state_dict(moved, strict=strict)
    return target
