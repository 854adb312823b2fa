"""Where the package's data (config/, policies/, launch/) is: the ROS share directory of
an installed package (`share/env_actor/...` in the ament index, or under the Python
prefix or install target of a pip install), else the source tree of a checkout."""
from pathlib import Path
import sys

SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


def _candidates() -> list:
    roots = []
    try:
        from ament_index_python.packages import get_package_share_directory
        roots.append(Path(get_package_share_directory('env_actor')))
    except Exception:   # no ament index (pip install), or the package is not in it
        pass
    roots += [Path(sys.prefix) / 'share' / 'env_actor',       # pip install into a venv
              SOURCE_ROOT / 'share' / 'env_actor',              # pip install --target DIR
              SOURCE_ROOT]                                       # a checkout
    return roots


def share_path(*parts: str) -> Path:
    """The first existing `<root>/<parts>` over the roots above (the source tree's path
    when none exists, so error messages name a sensible file)."""
    for root in _candidates():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    return SOURCE_ROOT.joinpath(*parts)
