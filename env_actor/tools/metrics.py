"""Action-sequence metrics: errors against recorded actions, chunk-seam smoothness, plots."""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def seam_metrics(actions: np.ndarray, new_chunk: np.ndarray) -> dict:
    """Smoothness of commanded actions (T, A); rows of NaN are ticks with no command.

    Step size |a_t - a_{t-1}| (max over joints) between consecutive *commanded* ticks
    (ticks without a command, e.g. Sequential's blocked ticks, are skipped), split into
    steps onto a tick where a new chunk took over (seams) and the rest; jerk = mean norm
    of the third difference of the commanded sequence.
    """
    valid = np.all(np.isfinite(actions), axis=1)
    actions, new_chunk = actions[valid], np.asarray(new_chunk)[valid]
    if len(actions) < 2:
        nan = float('nan')
        return {'seam_step_mean': nan, 'seam_step_max': nan, 'seams': 0,
                'inside_step_mean': nan, 'inside_step_max': nan, 'jerk_mean': nan}
    steps = np.max(np.abs(np.diff(actions, axis=0)), axis=1)
    seam = new_chunk[1:]
    inside = ~new_chunk[1:]

    def stats(mask):
        values = steps[mask]
        return (float(values.mean()) if values.size else float('nan'),
                float(values.max()) if values.size else float('nan'), int(values.size))
    seam_mean, seam_max, seams = stats(seam)
    inside_mean, inside_max, _ = stats(inside)
    third = np.diff(actions, n=3, axis=0)
    jerk = float(np.linalg.norm(third, axis=1).mean()) if len(third) else float('nan')
    return {'seam_step_mean': seam_mean, 'seam_step_max': seam_max, 'seams': seams,
            'inside_step_mean': inside_mean, 'inside_step_max': inside_max, 'jerk_mean': jerk}


def error_metrics(predicted: np.ndarray, recorded: np.ndarray,
                  joint_names: Sequence[str]) -> dict:
    """Per-joint MAE/RMSE over ticks where both are finite."""
    ok = np.all(np.isfinite(predicted), axis=1) & np.all(np.isfinite(recorded), axis=1)
    err = predicted[ok] - recorded[ok]
    if not ok.any():
        return {'ticks_compared': 0}
    mae = np.abs(err).mean(axis=0)
    rmse = np.sqrt((err ** 2).mean(axis=0))
    return {'ticks_compared': int(ok.sum()), 'mae_mean': float(mae.mean()),
            'rmse_mean': float(rmse.mean()),
            'per_joint': {name: {'mae': float(m), 'rmse': float(r)}
                          for name, m, r in zip(joint_names, mae, rmse)}}


def plot_joints(out_dir: Path, times: np.ndarray, predicted: np.ndarray,
                recorded: Optional[np.ndarray], chunk_times: np.ndarray,
                joint_names: Sequence[str]) -> list[Path]:
    """One PNG per joint: recorded vs predicted actions, chunk starts as vertical lines."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    for j, name in enumerate(joint_names):
        fig, ax = plt.subplots(figsize=(9, 3))
        if recorded is not None:
            ax.plot(times, recorded[:, j], color='0.3', lw=1.5, label='recorded')
        ax.plot(times, predicted[:, j], color='tab:blue', lw=1.0, label='predicted')
        for t in chunk_times:
            ax.axvline(t, color='tab:orange', lw=0.9, ls='--', alpha=0.9)
        ax.set_xlabel('time [s]')
        # ROS joint positions (REP 103): rad for revolute, m for prismatic joints
        ax.set_ylabel(f'{name} position\n[rad or m]')
        ax.set_title(f'{name}: recorded vs predicted (orange: chunk starts)')
        ax.legend(loc='upper right', fontsize=8)
        fig.tight_layout()
        path = Path(out_dir) / f'plot_{name}.png'
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths
