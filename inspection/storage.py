"""The Cloud Storage adapter: one lazily created client per process, object references, and the few
object operations the product uses. The claimed move built on these is in inspection/claims.py.

Every call goes through the real `google-cloud-storage` client, to GCS in the cloud and to
fake-gcs-server (behind scripts/local/gcs.py's enforcing proxy) on a laptop.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.cloud import storage

from inspection import calls, layout, logs, metadata

T = TypeVar("T")

# google-cloud-storage 3.x fetches each bucket's metadata in a background thread for OpenTelemetry
# span attributes, even with tracing off: a `buckets.get` per bucket and process, which needs
# storage.buckets.get (granted to nothing here) and is answered 403. This switch, the library's
# own, turns it off (google/cloud/storage/_opentelemetry_tracing.py, DISABLE_BUCKET_MD_ENV_VAR:
# https://github.com/googleapis/python-storage/blob/main/google/cloud/storage/_opentelemetry_tracing.py).
os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")


def client() -> storage.Client:
    """The client of the deployable serving this request, made once per process: in the cloud a
    process serves one deployable, so one client. It names the deployable in its User-Agent."""
    return _client_for(calls.current())


@functools.cache
def _client_for(deployable: str) -> storage.Client:
    from google.api_core.client_info import ClientInfo

    info = ClientInfo(user_agent=calls.user_agent(deployable))
    if os.environ.get("STORAGE_EMULATOR_HOST"):  # the emulator needs no credentials
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
        session = _traced_session() if calls.tracing() else None
        made = storage.Client(
            project=project, credentials=AnonymousCredentials(), client_info=info, _http=session
        )
    else:
        made = storage.Client(client_info=info)
    # The switch above stops the cache's fetches, not its checks: once a bucket is in it (any
    # create_bucket or get_bucket fills it), every 404 sends a background `buckets.get` to see
    # whether the bucket still exists, which our roles do not grant (an ERROR in the audit logs),
    # and a decision's claim lookup is a 404. The library has no supported opt-out yet
    # (https://github.com/googleapis/google-cloud-python/issues/17650, the flag proposed in
    # https://github.com/googleapis/google-cloud-python/pull/18203), so the cache goes.
    if getattr(made, "_bucket_metadata_cache", None) is not None:
        made._bucket_metadata_cache = None
    return made


client.cache_clear = _client_for.cache_clear  # a test's new emulator, or a new trace


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Each call's result, in order, with the calls made side by side: independent requests wait one
    round trip together instead of one each (what a reviewer waits for is mostly round trips to
    GCS). Every call is answered before anything is returned or raised; the first error is raised."""
    import concurrent.futures

    first, *others = calls
    context = contextvars.copy_context  # each call acts as the deployable serving this request
    futures = [_pool().submit(context().run, call) for call in others]
    try:
        results = [first()]
    finally:
        concurrent.futures.wait(futures)
    return results + [future.result() for future in futures]


@functools.cache
def _pool():
    from concurrent.futures import ThreadPoolExecutor  # only where calls go side by side: cold starts

    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="storage")


def _traced_session():
    import requests

    class TracedSession(requests.Session):
        """Tells the storage emulator's proxy which line of ours made each request (tracing only)."""

        def request(self, method, url, **kwargs):
            headers = dict(kwargs.pop("headers", None) or {})
            headers[calls.ORIGIN_HEADER] = calls.origin()
            return super().request(method, url, headers=headers, **kwargs)

    return TracedSession()


@dataclass(frozen=True)
class ObjectRef:
    """One object, or one generation of it when `generation` is set."""

    bucket: str
    name: str
    generation: int | None = None

    @property
    def uri(self) -> str:
        return layout.gs_uri(self.bucket, self.name, self.generation)

    def log_fields(self) -> dict:
        """How log lines name an image: its object name and generation."""
        return {"image": self.name, "generation": self.generation}

    def blob(self) -> storage.Blob:
        return client().bucket(self.bucket).blob(self.name, generation=self.generation)

    @classmethod
    def parse(cls, uri: str) -> ObjectRef:
        """gs://bucket/name[#generation]"""
        return cls(*layout.parse_gs_uri(uri))


def provenance(source: ObjectRef) -> dict[str, str]:
    """Metadata naming the inbound object a routed image came from; it stays with the image through
    every later move, so records name the image the same way wherever it is."""
    return {
        metadata.SOURCE_BUCKET: source.bucket,
        metadata.SOURCE_NAME: source.name,
        metadata.SOURCE_GENERATION: str(source.generation),
    }


def get(ref: ObjectRef) -> storage.Blob | None:
    """The resource of exactly that generation (current or not), or None when it no longer exists."""
    return client().bucket(ref.bucket).get_blob(ref.name, generation=ref.generation)


def read(source: ObjectRef) -> bytes | None:
    """The bytes of exactly that generation (current or not), or None when it no longer exists."""
    try:
        return source.blob().download_as_bytes()
    except gexc.NotFound:
        return None


def create_once(ref: ObjectRef, data: bytes, content_type: str) -> None:
    """Write an object that is the same whoever writes it; there already is fine (a redelivery)."""
    with contextlib.suppress(gexc.PreconditionFailed):
        client().bucket(ref.bucket).blob(ref.name).upload_from_string(
            data, content_type=content_type, if_generation_match=0
        )


def rewrite(destination, source, **preconditions) -> None:
    """A server-side copy, however many rewrite calls a large object takes."""
    token, _, _ = destination.rewrite(source, **preconditions)
    while token is not None:
        token, _, _ = destination.rewrite(source, token=token, **preconditions)


def delete_generation(ref: ObjectRef) -> None:
    """Delete exactly that generation, current or noncurrent; gone already is fine."""
    with contextlib.suppress(gexc.NotFound):
        ref.blob().delete()


TIDY_RETRY_S = 5.0  # how long a tidy-up's delete is retried: see tidy


def tidy(change: Callable[[], object], what: str, **fields: object) -> None:
    """Make `change`, which tidies after something already stored and is repaired where it is met
    if it is lost (a stale queue entry, a lease on a decided image). A failure is logged and never
    raised, so the caller still answers truly that the thing is stored."""
    try:
        change()
    except Exception as exc:  # any failure here is a loss that is repaired later
        logs.warning(
            f"{what} failed; it is repaired where it is met",
            **fields,
            error=f"{type(exc).__name__}: {exc}"[:1000],
        )


def delete_quietly(
    bucket: str, name: str, generation: int | None = None, retry_for: float | None = None
) -> None:
    """Delete if it is still there (at that generation, when given); otherwise do nothing.
    `retry_for`: seconds to retry a failing delete, instead of the client's two minutes."""
    options = {}
    if retry_for is not None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        options["retry"] = DEFAULT_RETRY.with_timeout(retry_for)
    with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
        client().bucket(bucket).blob(name).delete(if_generation_match=generation, **options)
