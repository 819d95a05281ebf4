"""Following a local directory of CloudTrail log files (``--directory``).

Every ``poll_seconds`` the tree is walked (sorted, sub-folders included) for log files
(``.json``/``.json.gz``, no digest or Insights files). A file's version is its
``size-mtime_ns``: a file is read once per version, so a file rewritten (or appended to)
is read again, and the checkpoint makes a restart skip what was published. Files modified
less than ``settle_seconds`` ago are left for the next round (they may still be being
copied in), except with ``once``. Checkpoint entries of files that are gone are pruned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from falconet.errors import SensorError

from .checkpoint import Checkpoint
from .keys import is_log_key
from .polling import PollingSource
from .sources import FILE, Fetched, FetchError, ObjectRef, Outcome


def version_of(st: os.stat_result) -> str:
    return f"{st.st_size}-{st.st_mtime_ns}"


class DirectoryFollower(PollingSource):
    """The ``directory`` source (see the module docstring)."""

    name = "directory"

    def __init__(
        self,
        root: str,
        checkpoint: Checkpoint,
        *,
        poll_seconds: float = 60.0,
        settle_seconds: float = 2.0,
        once: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(poll_seconds, once, clock)
        self.root = os.path.abspath(root)
        self.checkpoint = checkpoint
        self.settle_seconds = settle_seconds
        self._present: set[str] = set()

    def check(self) -> None:
        if not os.path.isdir(self.root):
            raise SensorError(f"{self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SensorError(f"{self.root} cannot be read (permissions)")

    def scan(self) -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        present: set[str] = set()
        newest_allowed = time.time_ns() - int(self.settle_seconds * 1e9)
        errors: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=errors.append):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if not is_log_key(path):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # deleted in between
                ref = ObjectRef(FILE, "", path, version_of(st), st.st_size)
                present.add(ref.id)
                if self.checkpoint.done(ref.id, ref.etag):
                    continue
                if not self.once and st.st_mtime_ns > newest_allowed:
                    continue  # still being written, perhaps: next round
                refs.append(ref)
        if errors and not present:
            raise SensorError(f"cannot read {self.root}: {errors[0]}")
        self._present = present
        return refs

    def read(self, ref: ObjectRef) -> Fetched:
        try:
            with open(ref.key, "rb") as f:
                before = os.fstat(f.fileno())
                data = f.read()
                after = os.fstat(f.fileno())
        except FileNotFoundError:
            raise FetchError(
                f"{ref.key} was deleted before it was read", permanent=True, kind="file"
            ) from None
        except OSError as exc:
            raise FetchError(f"cannot read {ref.key}: {exc.strerror or exc}", kind="file") from None
        if version_of(before) != version_of(after):
            raise FetchError(f"{ref.key} changed while it was read", kind="file")
        return Fetched(ref, data, version_of(after))

    def settle(self, outcomes: list[Outcome]) -> None:
        base = f"file://{self.root}/"
        present = self._present
        self.checkpoint.prune(lambda k, e: k.startswith(base) and k not in present)
