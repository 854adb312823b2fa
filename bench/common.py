"""Helpers shared by the benchmarks: percentiles, tables, result files, machine info."""
import json
import os
from pathlib import Path
import platform
import time
from typing import Optional, Sequence

import numpy as np

RESULTS = Path(__file__).resolve().parent / 'results'


def machine() -> dict:
    import torch
    return {'python': platform.python_version(), 'machine': platform.machine(),
            'cpus': os.cpu_count(), 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(),
            'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'date': time.strftime('%Y-%m-%d %H:%M:%S')}


def percentiles_ms(samples_s: Sequence[float]) -> dict:
    values = np.asarray(samples_s) * 1e3
    return {'p50_ms': float(np.percentile(values, 50)),
            'p95_ms': float(np.percentile(values, 95)),
            'mean_ms': float(values.mean()), 'n': int(values.size)}


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[str(h) for h in headers]] + [[f'{c:.2f}' if isinstance(c, float) else str(c)
                                             for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |'
             for row in cells]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def parser(description: str, name: str):
    """Return an argument parser that shows defaults and has the shared `--out` option.

    Args:
        description: the benchmark's one-line description.
        name: the result file's stem under bench/results/.
    """
    from env_actor.tools.cli import tool_parser
    result = tool_parser(description)
    result.add_argument('--out', type=Path, default=None,
                        help=f'result JSON (default: bench/results/{name}.json, the tracked '
                             'file the docs quote: pass another path to keep it unchanged)')
    return result


def write_results(name: str, data: dict, suffix: str = '',
                  out: Optional[Path] = None) -> Path:
    """Write `data` as JSON to `out`, or to the tracked bench/results/<name><suffix>.json.

    Returns:
        The path written.
    """
    path = Path(out) if out is not None else RESULTS / f'{name}{suffix}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding='utf-8')
    return path
