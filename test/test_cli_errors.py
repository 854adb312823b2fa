"""Expected user errors: one line on stderr naming what is wrong, exit code 2, no
traceback, and no waiting out a timeout."""
from pathlib import Path
import subprocess
import sys
import time

import pytest

from ros_harness import next_domain

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize('argv, text', [
    (['env-actor-smoke', '--policy-yaml', '/nonexistent.yaml'],
     'policy YAML file not found: /nonexistent.yaml'),
    (['env-actor-eval', '/nonexistent', '--policy-yaml', '/nonexistent.yaml',
      '--params-file', str(ROOT / 'config' / 'sim.yaml'), '--out', '{tmp}/eval'],
     'bag not found: /nonexistent'),
    (['env-actor-replay', '/nonexistent_bag'], 'bag not found: /nonexistent_bag'),
    (['env-actor-train', '{tmp}', '--out', '{tmp}/bundle'], 'no rosbag2 folders under'),
    (['env-actor-make-bag', '{tmp}', '--duration', '1'], 'output bag already exists'),
    (['env-actor-launch', '--policy-yaml', '/nonexistent.yaml'],
     '--policy-yaml: file not found: /nonexistent.yaml'),
    (['env-actor-node', '--ros-args', '--params-file', '/nonexistent.yaml'],
     "Couldn't parse params file"),
    (['env-actor-demo', '--policy-yaml', '/nonexistent.yaml', '--timeout', '120',
      '--out', '{tmp}/out'], 'cannot start: configure failed'),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, argv, text):
    import os
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_domain()))
    args = [str(BIN / argv[0])] + [a.replace('{tmp}', str(tmp_path)) for a in argv[1:]]
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert 'Traceback' not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if ': error: ' in line]
    assert len(errors) == 1 and text in errors[0], out.stderr
    assert time.monotonic() - started < 60          # failed fast, no timeout waited out
