"""Where the package's data (config/, policies/, launch/) is: the ROS share directory of
an installed package (`share/env_actor/...`), else the source tree of a checkout."""
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


def share_path(*parts: str) -> Path:
    """`share/env_actor/<parts>` when the package is installed there, else the same path
    in the source tree (editable installs, this repository)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        candidate = Path(get_package_share_directory('env_actor')).joinpath(*parts)
        if candidate.exists():
            return candidate
    except Exception:   # no ament index (pip install), or the package is not in it
        pass
    return SOURCE_ROOT.joinpath(*parts)
