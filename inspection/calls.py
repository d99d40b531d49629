"""Who calls Google, and what it calls, when someone is listening.

Each deployable names itself for the request it serves (`acting_as("move")`); every client this
package makes sends it in its User-Agent, `quality-inspection/<deployable>`, which Cloud Audit
Logs keep as the caller-supplied user agent. A process that names no deployable is one of the
deployer's scripts.

The permission trace (scripts/local/trace.py) installs a recorder. Cloud Storage requests are
recorded at the wire, by the storage emulator's proxy, which reads the User-Agent and the
`x-qi-origin` header (the line of our code that made the request) this module provides. Pub/Sub,
Vertex AI, IAM and BigQuery calls are recorded here, where our adapters make them. With no recorder
installed (always, in the cloud), `record` returns at once and no header is added.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from typing import TypeVar

T = TypeVar("T")

SCRIPTS = "scripts"
ORIGIN_HEADER = "x-qi-origin"
# Stand-ins record the resource the cloud code would name; these are resolved by the trace.
OWN_ACCOUNT = "projects/-/serviceAccounts/{own}"  # the deployable's own service account
RECORDS = "projects/{project}/datasets/{records}"  # the stack's records dataset
_ROOTS = ("inspection", "functions", "review_app", "scripts")

_deployable: ContextVar[str] = ContextVar("deployable", default="")
_recorder: Callable[[str, str, str, str, dict], None] | None = None


def current() -> str:
    """The deployable serving the current request or task."""
    return _deployable.get() or SCRIPTS


@contextlib.contextmanager
def acting_as(deployable: str) -> Iterator[None]:
    token = begin(deployable)
    try:
        yield
    finally:
        end(token)


def begin(deployable: str) -> Token:
    """For frameworks that start and end a request in two hooks (Flask); `end` takes the token."""
    return _deployable.set(deployable)


def end(token: Token | None) -> None:
    if token is not None:
        _deployable.reset(token)


def each_acting_as(deployable: str, items: Iterable[T]) -> Iterator[T]:
    """`items`, each one produced as `deployable` (a generator resumed outside the request)."""
    items = iter(items)
    while True:
        with acting_as(deployable):
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


def user_agent(deployable: str | None = None) -> str:
    """What our requests say they are: the deployable acting (the trace and Google's logs read it)."""
    return f"quality-inspection/{deployable or current()}"


def tracing() -> bool:
    return _recorder is not None


def install(recorder: Callable[[str, str, str, str, dict], None] | None) -> None:
    """`recorder(deployable, method, resource, origin, detail)`; None stops recording."""
    global _recorder
    _recorder = recorder


def record(method: str, resource: str, **detail: object) -> None:
    """One call an adapter makes: `method` as the API names it (pubsub.topics.publish, …), on the
    full resource name IAM checks (projects/P/topics/T, …)."""
    if _recorder is not None:
        _recorder(current(), method, resource, origin(), detail)


def origin() -> str:
    """The line of our code nearest the call: path:line, relative to the repository."""
    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        ours = not path.endswith(("/inspection/calls.py", "/inspection/storage.py"))
        ours = ours and "/site-packages/" not in path and "/scripts/local/" not in path
        for root in _ROOTS if ours else ():
            at = path.rfind(f"/{root}/")
            if at >= 0:
                return f"{path[at + 1 :]}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def serves(deployable: str):
    """Decorate an entry point: everything it calls acts as `deployable`."""
    import functools

    def decorate(handler):
        @functools.wraps(handler)
        def serve(*args, **kwargs):
            with acting_as(deployable):
                return handler(*args, **kwargs)

        return serve

    return decorate
