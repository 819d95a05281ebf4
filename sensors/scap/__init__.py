"""Reader of libscap capture files (.scap): Falco and sysdig captures as falconet syscall events.

``read_scap(path)`` yields the :class:`~falconet.event.Event` of every completed syscall
(and every non-syscall event Falco's rules see) of a capture, with the thread, fd, user and
container context libsinsp would give it. See ``docs/sensors/scap.md``.
"""

from .blocks import ScapFormatError
from .reader import ReadStats, is_scap, read_scap

__all__ = ["ReadStats", "ScapFormatError", "is_scap", "read_scap"]
