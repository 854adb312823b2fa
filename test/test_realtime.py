"""Real-time scheduling of the control thread: only that thread, never what it starts."""
import os
import subprocess
import sys
import threading

import pytest

from env_actor.runtime.realtime import (reset_scheduling, scheduling_policy as policy,
                                        set_fifo_priority)


def in_thread(body) -> dict:
    result: dict = {}
    thread = threading.Thread(target=body, args=(result,))
    thread.start()
    thread.join()
    return result


def test_priority_zero_leaves_normal_scheduling():
    result = in_thread(lambda r: r.update(text=set_fifo_priority(0), policy=policy()))
    assert result == {'text': 'SCHED_OTHER', 'policy': os.SCHED_OTHER}


def test_fifo_thread_starts_threads_and_processes_at_normal_scheduling():
    caller = policy()

    def body(result):
        result['text'] = set_fifo_priority(10)
        result['self'] = policy()
        inner = in_thread(lambda r: r.update(policy=policy()))
        result['thread'] = inner['policy']
        result['process'] = int(subprocess.run(
            [sys.executable, '-c', 'import os; print(os.sched_getscheduler(0))'],
            capture_output=True, text=True, check=True).stdout)
        reset_scheduling()
        result['after'] = policy()
    result = in_thread(body)
    if result['text'] == 'SCHED_FIFO 10':           # permitted (root or rtprio limit)
        assert result['self'] == os.SCHED_FIFO
    else:                                           # refused: said why, runs normally
        assert result['text'].startswith('SCHED_OTHER: SCHED_FIFO 10 refused (')
        assert result['self'] == os.SCHED_OTHER
    assert result['thread'] == result['process'] == result['after'] == os.SCHED_OTHER
    assert policy() == caller                       # the calling thread only


@pytest.mark.parametrize('bad', [-1, 100, True])
def test_bad_priority_names_the_parameter(bad):
    with pytest.raises(ValueError, match=r'control_thread_priority must be in \[0, 99\]'):
        set_fifo_priority(bad)
