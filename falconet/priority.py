"""Falco rule priorities.

The numbering follows Falco: a lower number is more severe, ``EMERGENCY`` is 0 and
``DEBUG`` is 7. Parsing is case-insensitive and accepts ``info`` for ``INFORMATIONAL``.
"""

from __future__ import annotations

import enum


class Priority(enum.IntEnum):
    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @property
    def title(self) -> str:
        """The full name as Falco prints it in alerts (``Warning``, ``Informational``)."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Parse a priority name; raise ``ValueError`` with the accepted names otherwise."""
        key = text.strip().upper()
        if key == "INFO":
            return cls.INFORMATIONAL
        try:
            return cls[key]
        except KeyError:
            raise ValueError(
                f"invalid priority {text!r}: expected one of "
                + ", ".join(p.name.lower() for p in cls)
                + " (or info)"
            ) from None
