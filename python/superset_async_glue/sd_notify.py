"""systemd's readiness notification (the sd_notify protocol), both ends of it.

A service tells it is ready by sending `READY=1` as one datagram to the unix socket named by
$NOTIFY_SOCKET (an abstract socket when the name starts with '@'). systemd listens on it for a unit
with `Type=notify`; the runner's supervisor listens on one of its own for each worker it starts
(runner/supervisor.py). The worker sends it on Celery's `worker_ready` signal (worker_app.py): its
readiness is then known the moment it is ready, where a broadcast ping sent before it listened was
lost and cost a timeout.
"""

from __future__ import annotations

import array
import contextlib
import os
import secrets
import select
import socket
import time
from pathlib import Path

NOTIFY_SOCKET = "NOTIFY_SOCKET"
_UCRED = array.array("i", [0, 0, 0]).itemsize * 3  # struct ucred: pid, uid, gid
_SUN_PATH_MAX = 107  # sockaddr_un's sun_path is 108 bytes with the final NUL


def _address(name: str) -> str:
    return "\0" + name[1:] if name.startswith("@") else name


def take_notify_socket() -> str | None:
    """$NOTIFY_SOCKET, removed from this process's environment.

    What this process starts or forks afterwards (Celery's pool children, headless Chromium) must not
    inherit it: with systemd's NotifyAccess=main their messages would be refused and logged, and one
    of them telling READY=1 would be a lie about the worker.
    """
    return os.environ.pop(NOTIFY_SOCKET, None) or None


def notify(name: str, message: str = "READY=1") -> bool:
    """Send `message` to the notify socket `name`; False when nobody listens there (never blocks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            # MSG_DONTWAIT: a listener that stopped reading (a runner that no longer waits) must not
            # block the worker's main process when its queue is full.
            sock.sendto(message.encode(), socket.MSG_DONTWAIT, _address(name))
        except OSError:
            return False
    return True


class NotifyListener:
    """A notify socket a child process is given in $NOTIFY_SOCKET (the runner's side of the protocol).

    A path socket in `path`'s directory (the runner's 0700 run directory) when the path fits in a unix
    socket address, else an abstract one with a random name. Only a message whose sender the kernel
    reports as the expected process counts (systemd's NotifyAccess=main).
    """

    def __init__(self, path: Path) -> None:
        self._path: Path | None = path if len(os.fsencode(path)) <= _SUN_PATH_MAX else None
        self.name = str(path) if self._path else f"@superset-async-notify-{secrets.token_hex(8)}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the kernel names each sender
        self._sock.setblocking(False)
        if self._path:
            self._path.unlink(missing_ok=True)  # left by a runner that was killed
        self._sock.bind(_address(self.name))

    def ready_from(self, pid: int, timeout: float) -> bool:
        """True once `pid` has sent READY=1; waits at most `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            readable, _, _ = select.select([self._sock], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                return False
            try:
                data, ancillary, _, _ = self._sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED))
            except BlockingIOError:
                continue
            if _sender_pid(ancillary) == pid and "READY=1" in data.decode(errors="replace").splitlines():
                return True

    def close(self) -> None:
        """Stop listening; a later message (a restarted worker's) finds nobody and is dropped by its sender."""
        self._sock.close()
        if self._path:
            with contextlib.suppress(OSError):
                self._path.unlink()


def _sender_pid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED:
            return array.array("i", data[:_UCRED])[0]
    return None
