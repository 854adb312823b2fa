"""A thread that converts the newest pending message of each source off the executor.

Sensor callbacks call `submit(source, convert, stamp)` (cheap: it only replaces the pending
item of that source), so the executor thread, which also runs the control timer, never
decodes or resizes images. The worker converts each source's newest item (older ones are
dropped: only the newest frame matters) and delivers the result through `on_value`, or the
error text through `on_error`. OpenCV releases the GIL while it decodes and resizes, so
this runs beside the executor on another core.
"""
import threading
from typing import Any, Callable, Optional


class ConversionWorker:
    """Converts the newest pending item per source on one background thread.

    Args:
        on_value: called as on_value(source, value, stamp) after a successful conversion.
        on_error: called as on_error(source, message) when conversion raises ValueError.
    """

    def __init__(self, on_value: Callable[[str, Any, float], None],
                 on_error: Callable[[str, str], None], name: str = 'env_actor_convert') -> None:
        self._on_value = on_value
        self._on_error = on_error
        self._lock = threading.Condition()
        self._pending: dict[str, tuple[Callable[[], Any], float]] = {}
        self._closed = False
        self.dropped = 0
        self.converted = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, source: str, convert: Callable[[], Any], stamp: float) -> None:
        with self._lock:
            if source in self._pending:
                self.dropped += 1
            self._pending[source] = (convert, stamp)
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                source = next(iter(self._pending))
                convert, stamp = self._pending.pop(source)
            self._convert(source, convert, stamp)

    def _convert(self, source: str, convert: Callable[[], Any], stamp: float) -> None:
        try:
            value: Optional[Any] = convert()
        except ValueError as exc:
            self._on_error(source, str(exc))
            return
        self.converted += 1
        self._on_value(source, value, stamp)
