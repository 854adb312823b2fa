"""Real-time scheduling for the thread that runs the control timer.

Under Linux's default scheduler a thread that wakes for a timer tick may wait for
another task's time slice to end (about 3 ms here) when both cores are busy decoding
images or running inference; a SCHED_FIFO thread runs as soon as it wakes. Only the
calling thread changes: SCHED_RESET_ON_FORK makes every thread and process it starts
later (camera thread, inference process, their restarts) run at normal priority, so the
policy never runs at real-time priority. Like ros2_control's controller manager, a
refusal (no CAP_SYS_NICE and no rtprio limit) is reported and the thread runs normally.
"""
import os

MAX_PRIORITY = 99


def set_fifo_priority(priority: int) -> str:
    """Run the calling thread at SCHED_FIFO `priority` (0: leave normal scheduling).

    Args:
        priority: 1-99 (higher preempts lower), or 0.

    Returns:
        What the thread runs with, e.g. 'SCHED_FIFO 40', or 'SCHED_OTHER: SCHED_FIFO 40
        refused (Operation not permitted)'.

    Raises:
        ValueError: a priority outside [0, 99].
    """
    if isinstance(priority, bool) or not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f'control_thread_priority must be in [0, {MAX_PRIORITY}], got '
                         f'{priority!r}')
    if priority == 0:
        return 'SCHED_OTHER'
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(int(priority)))
    except (OSError, AttributeError) as exc:     # not permitted, or not Linux
        return f'SCHED_OTHER: SCHED_FIFO {priority} refused ({exc.strerror or exc})'
    return f'SCHED_FIFO {priority}'


def scheduling_policy(tid: int = 0) -> int:
    """The scheduling policy of thread or process `tid` (0: the calling thread), without
    the SCHED_RESET_ON_FORK flag, e.g. os.SCHED_FIFO.

    Raises:
        OSError: no such thread; AttributeError: not Linux.
    """
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK


def reset_scheduling() -> None:
    """Back to normal scheduling for the calling thread (no-op if it already is)."""
    try:
        if scheduling_policy() != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass
