"""Hearing SIGINT/SIGTERM before the server does, without taking the signals over.

Why the dashboard needs it: uvicorn waits for open responses to finish before it runs the lifespan shutdown,
so an endless event stream would hold it forever. The change bus therefore closes its streams on the stop
signals, then the handler that was installed before runs as it would have. A module of its own because
signal handling is process-wide state with rules of its own (main thread only, restore only what we set).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def chain_stop_signals(on_signal: Callable[[], None]) -> Callable[[], None]:
    """Call `on_signal` (from the signal handler) in front of the current SIGINT/SIGTERM handlers; returns
    the call that puts them back. Outside the main thread, or over a non-Python handler, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: list[tuple[signal.Signals, Any, Any]] = []
    for sig in _SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue  # SIG_DFL / SIG_IGN / foreign: do not change what the signal does

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            on_signal()
            previous(signum, frame)

        signal.signal(sig, handler)
        installed.append((sig, previous, handler))

    def restore() -> None:
        for sig, previous, handler in installed:
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return restore
