"""Stop a long-running command cleanly on SIGTERM or Ctrl-C.

Left to Python's defaults, SIGINT raises KeyboardInterrupt wherever the main thread happens
to be - inside a Kafka client's flush, a callback, an object being freed (where it is
printed and ignored, and the command runs on) - and SIGTERM kills the process outright.
:func:`stop_on_signals` turns both into a flag the command's loop checks between steps;
a second signal gives up on the clean stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(on_stop: Callable[[int], None] | None = None) -> Iterator[threading.Event]:
    """While in the block, SIGTERM and SIGINT set the yielded event (and call ``on_stop``
    with the signal number, once); a second one raises KeyboardInterrupt. The previous
    handlers come back on exit. Outside the main thread no handler can be installed: the
    event is then only set by the caller."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # second signal: give up on a clean stop
        stopping.set()
        if on_stop is not None:
            on_stop(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
