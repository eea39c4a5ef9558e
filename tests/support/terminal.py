"""A command in a pseudo-terminal, driven as a person would: wait for text on the screen, type a line.
The standard library's pty (no pexpect): the command sees a terminal, so rich draws its spinners."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

# Colours, cursor moves and the like: what a person does not read.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


def readable(raw: str) -> str:
    return _CONTROL.sub("", raw)


class Terminal:
    def __init__(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str], columns: int = 160, rows: int = 50
    ) -> None:
        primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # A session of its own: the terminal's signals (Ctrl-C) reach the command, never the test's process.
        self.process = subprocess.Popen(
            list(argv),
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            cwd=cwd,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        os.close(secondary)
        self._fd = primary
        self.screen = ""  # everything shown so far, readable
        self._seen = 0  # how much of it an expect() has consumed

    def expect(self, pattern: str, timeout: float = 60) -> str:
        """Wait until ``pattern`` (a regular expression) shows after what earlier calls matched; returns the
        text up to and including the match."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            found = compiled.search(self.screen, self._seen)
            if found:
                shown = self.screen[self._seen : found.end()]
                self._seen = found.end()
                return shown
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {pattern!r} on the screen; it shows:\n{self.screen[self._seen :]}")

    def type_line(self, text: str) -> None:
        os.write(self._fd, text.encode() + b"\r")

    def end_input(self) -> None:
        """Ctrl-D at the start of a line."""
        os.write(self._fd, b"\x04")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._fd], [], [], min(timeout, 1.0))
        if not ready:
            return self.process.poll() is None
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # the command ended and closed the terminal
            return False
        self.screen += readable(data.decode("utf-8", "replace"))
        return bool(data)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self._fd)
