"""The functions served on 127.0.0.1 by functions-framework, as Cloud Run serves them.

Two ways, chosen by StackConfig.handler_processes:
- in a thread of this process (`Served`), where a test can reach into a handler: read its log
  lines, put an outage in front of it;
- each function in a process of its own (`Spawned`), as Cloud Run runs instances. Predict, move
  and the storage proxy then no longer take turns on one interpreter's lock: on 2 cores the
  pipeline routes about 1.4 times as many images a second (docs/measurements.md). A process that
  dies is started again on the same port, as Cloud Run replaces a crashed instance, and Pub/Sub's
  redelivery reaches the new one. Each process writes its own record files (scripts/local/sink.py)
  and its log lines to where this process's go.

`python -m scripts.local.handlers <function> <port> <records folder>` is the process.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from scripts.local.ports import HOST, die_with_parent, free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
# function → (entry point, folder under functions/, functions-framework signature type)
FUNCTIONS = {
    "predict": ("predict_image", "predict", "cloudevent"),
    "move": ("move_image", "move", "http"),
    "sweep": ("sweep", "sweep", "http"),
}


def create_app(function: str):
    import functions_framework

    target, folder, signature = FUNCTIONS[function]
    return functions_framework.create_app(target, str(ROOT / "functions" / folder / "main.py"), signature)


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # headers and body are separate writes; don't wait for delayed ACKs

    def log_request(self, *args, **kwargs) -> None:  # the handlers log each decision themselves
        pass


class Served:
    """A WSGI app on a loopback port, in a daemon thread of this process."""

    def __init__(self, app, name: str, port: int = 0):
        self.server = make_server(
            HOST, port or free_port(), app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://{HOST}:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=name)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Spawned:
    """One function in a process of its own, started again whenever it dies until `stop()`."""

    def __init__(self, function: str, records_dir: Path, log_stream=None):
        self.function = function
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.restarts = 0  # times the process died and was started again
        self._command = [
            sys.executable,
            "-u",  # each log line written whole as it is logged, as Cloud Run reads them
            "-m",
            "scripts.local.handlers",
            function,
            str(self.port),
            str(records_dir),
        ]
        self._log = log_stream if _has_fileno(log_stream) else None  # None: this process's stdout
        self._stopping = threading.Event()
        self.process = self._start()
        threading.Thread(target=self._watch, daemon=True, name=f"{function}-watch").start()

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log is not None else None,
            # No preexec_fn: running Python between fork and exec in this threaded process (gRPC's
            # included) can hang the child before it starts; the child asks to die with us itself.
        )
        # Listening is ready: the app is loaded before the server binds. A request would run the
        # function (a GET to sweep is a sweep).
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return process
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    terminate(process)
                    raise TimeoutError(
                        f"the {self.function} handler did not start on port {self.port}"
                    ) from None
                time.sleep(0.05)

    def _watch(self) -> None:
        while True:
            self.process.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            while not self._stopping.is_set():
                try:
                    self.process = self._start()
                    break
                except (OSError, TimeoutError):  # keep trying, as Cloud Run keeps starting instances
                    time.sleep(1)

    def stop(self) -> None:
        self._stopping.set()
        terminate(self.process)


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def main(argv: list[str]) -> None:
    from inspection import logs  # noqa: F401 - JSON log lines from the first one on
    from scripts.local.sink import RecordSink

    function, port, records_dir = argv
    die_with_parent()
    sink = RecordSink(records_dir).install()
    served = Served(create_app(function), function, int(port))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass
    served.stop()
    sink.uninstall()  # the last second's records, written before the process ends


if __name__ == "__main__":
    main(sys.argv[1:])
