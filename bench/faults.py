"""Fault reaction times: how fast the node stops commanding, reports and recovers.

    python bench/faults.py [--repeats 3]

Uses the fault suite's robot and session (test/fault_robot.py): the node runs as
`env-actor-launch` with a params file in its own process (untrained mlp_chunk, 4 joints,
three raw 64x48 cameras at 15 Hz, 20 Hz control, joint_states_max_age 0.1 s,
camera_max_age 0.5 s, inference_timeout 1 s), this process is the robot. Per repeat one
node goes through: camera drop-out (2 s), joint-state drop-out (1.5 s), NaN joint states
(1.5 s), inference child SIGKILL, inference child SIGSTOP (3 s), SIGTERM. Times:
    stop      last command received - fault switched on (input faults: the last good
              input was published up to one input period before), or detection logged
              by the node - kill/stop sent (inference faults)
    resume    first command after the fault ended (input faults), or first command after
              the ERROR diagnostics, counted from the kill / stop (inference faults)
    hold      first hold trajectory received - signal sent; exit = process exit
Prints a table (median and max over the repeats) and writes bench/results/faults.json.
"""
import os
from pathlib import Path
import signal
import sys
import tempfile
import time

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'test')]
from common import machine, parser as bench_parser, table, write_results  # noqa: E402


def one_run(tmp: Path) -> dict:
    from fault_robot import Session
    s = Session(tmp)
    robot = s.robot
    out = {}
    try:
        s.wait_commands(0.0, count=5, timeout=90)
        t = s.fault(lambda: robot.camera_mode.update(left='drop'),
                    lambda: robot.camera_mode.update(left='good'), 2.0, 'left stale')
        out['camera drop-out (max age 0.5 s)'] = (t['last_command'] - t['start'],
                                                  t['resumed'] - t['end'])
        for mode, label in (('drop', 'joint-state drop-out (max age 0.1 s)'),
                            ('nan', 'NaN in joint states')):
            t = s.fault(lambda m=mode: setattr(robot, 'joint_mode', m),
                        lambda: setattr(robot, 'joint_mode', 'good'), 1.5,
                        'proprio stale')
            out[label] = (t['last_command'] - t['start'], t['resumed'] - t['end'])
        for signum, text, label in ((signal.SIGKILL, 'inference process died',
                                     'inference child SIGKILL'),
                                    (signal.SIGSTOP, 'inference hung',
                                     'inference child SIGSTOP (timeout 1 s)')):
            s.wait_commands(time.monotonic(), count=5, timeout=90)
            pid = int(s.latest_values()['inference_pid'])
            sent_wall, sent = time.time(), time.monotonic()
            os.kill(pid, signum)
            error = s.wait_diag(sent, 2, text, timeout=60)[0]
            # the chunk in hand (or a hold of its last action) goes on until the fault is
            # seen; "resume" is the first command after the ERROR diagnostics
            resumed = s.wait_commands(error, count=1, timeout=90)[0][0]
            detected = s.log_time(text, sent_wall)
            out[label] = (detected - sent_wall if detected else float('nan'),
                          resumed - sent)
            if signum == signal.SIGSTOP:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        s.wait_commands(time.monotonic(), count=5, timeout=90)
        sent = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=30)
        exited = time.monotonic()
        time.sleep(0.3)
        holds = s.holds(sent)
        out['SIGTERM: hold / exit'] = (holds[0][0] - sent if holds else float('nan'),
                                       exited - sent)
    finally:
        s.close()
    return out


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'faults')
    parser.add_argument('--repeats', type=int, default=3, help='runs of each fault')
    opts = parser.parse_args(args)
    from env_actor.tools.ros_env import isolate_ros_env
    isolate_ros_env()
    runs = []
    for i in range(opts.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(Path(tmp)))
        print(f'repeat {i + 1}/{opts.repeats} done', flush=True)
    rows, result = [], {}
    for label in runs[0]:
        stop = np.array([r[label][0] for r in runs])
        resume = np.array([r[label][1] for r in runs])
        result[label] = {'stop_s': stop.tolist(), 'resume_s': resume.tolist()}
        rows.append([label, float(np.median(stop)), float(np.max(stop)),
                     float(np.median(resume)), float(np.max(resume))])
    print()
    print(table(['fault', 'stop/detect median s', 'max s', 'resume median s', 'max s'],
                rows))
    path = write_results('faults', {'repeats': opts.repeats, 'faults': result,
                                    'machine': machine()}, out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
