"""Loopback helpers: the local stack never listens beyond 127.0.0.1."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0, what: str = "service") -> None:
    """Poll until `url` answers at all (any HTTP status), or raise with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not start at {url} within {timeout:.0f}s") from None
            time.sleep(0.05)


def die_with_parent() -> None:
    """`preexec_fn` for emulators we start: the kernel ends them when we end, `kill -9` included
    (Linux's PR_SET_PDEATHSIG; elsewhere the normal stop path is all there is)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def terminate(process: subprocess.Popen | None) -> None:
    """Stop a child process politely, then firmly."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
