"""The device rule shared by the node, the inference process and the offline tools."""
DEVICES = ('auto', 'cpu', 'cuda')


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cpu' / 'cuda[:N]' as given.

    Args:
        device: the `device` parameter.
    Returns:
        A torch device string.
    Raises:
        ValueError: an unknown name, or CUDA asked for where torch has none (names the
            parameter and says what to use instead).
    """
    import torch
    name = str(device).strip().lower()
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cpu':
        return 'cpu'
    if name == 'cuda' or name.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise ValueError(f"parameter device is {device!r} but this torch has no usable "
                             f"CUDA (torch {torch.__version__}); use 'auto' or 'cpu'")
        return name
    raise ValueError(f"parameter device {device!r} unknown; expected 'auto', 'cpu', 'cuda' "
                     f"or 'cuda:N'")
