"""SIGTERM and Ctrl-C stop long-running commands through a flag, not an exception."""

from __future__ import annotations

import os
import signal

import pytest

from falconet.stopping import stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_sets_the_flag_second_gives_up(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    seen: list[int] = []
    with stop_on_signals(seen.append) as stopping:
        assert not stopping.is_set()
        os.kill(os.getpid(), sig)  # handled at the next bytecode, in this (main) thread
        assert stopping.wait(5) and seen == [sig]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
            stopping.wait(5)  # the handler runs here at the latest
    assert seen == [sig] and signal.getsignal(sig) == before
