"""The environment of each deployable, declared once: the one seam between the Pulumi program (and
the local stack, the bench and the tests) that sets it, and the running code that reads it.

Each deployable has one settings class. Every field names its variable, its range and its
default in one place, and the class has both directions:
- `from_env()` for the code that runs: a bad value stops the instance with a ConfigError that
  names the variable and the allowed range, rather than failing image by image;
- `environment(**fields)` for the code that sets it: field names in, variable names out. Pulumi
  Outputs pass through; plain values are checked there and then, so a value the program sets is
  one the function accepts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from inspection import backends
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.limits import DEFAULT_LIMITS, DEFAULT_MAX_REQUEST_BYTES, Limits
from inspection.routing import DEFAULT_THRESHOLD, THRESHOLD_RANGE, parse_threshold

TOPIC_HINT = "projects/<project>/topics/<topic>"
SUBSCRIPTION_HINT = "projects/<project>/subscriptions/<subscription>"


# --- parsers: (raw text, variable name) → value, or ConfigError naming the variable and the range ---


def parse_int(raw: str, key: str, low: int, high: int) -> int:
    """An integer in [low, high]; the one integer rule for every setting, here and in infra/."""
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not valid: expected an integer in [{low}, {high}]") from None
    if not low <= value <= high:
        raise ConfigError(f"{key}={raw!r} is out of range: expected an integer in [{low}, {high}]")
    return value


def integer(low: int, high: int) -> Callable[[str, str], int]:
    return lambda raw, key: parse_int(raw, key, low, high)


def text(hint: str) -> Callable[[str, str], str]:
    def parse(raw: str, key: str) -> str:
        if not raw.strip():
            raise ConfigError(f"{key} is not set: expected {hint}")
        return raw.strip()

    return parse


def matching(pattern: str, hint: str) -> Callable[[str, str], str]:
    compiled = re.compile(pattern)

    def parse(raw: str, key: str) -> str:
        value = text(hint)(raw, key)
        if not compiled.match(value):
            raise ConfigError(f"{key}={value!r} is not valid: expected {hint}")
        return value

    return parse


def choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(raw: str, key: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ConfigError(f"{key}={value!r} is not valid: expected one of {', '.join(options)}")
        return value

    return parse


def optional(raw: str, key: str) -> str:
    return raw.strip()


# --- the machinery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Var:
    """One environment variable: its name, how it is read, and its default (None: required)."""

    name: str
    parse: Callable[[str, str], Any]
    default: str | None = None

    def read(self, env: Mapping[str, str]) -> Any:
        raw = env.get(self.name, "")
        if not str(raw).strip():
            if self.default is None:
                return self.parse("", self.name)  # the parser says what is expected
            raw = self.default
        return self.parse(str(raw), self.name)


def var(name: str, parse: Callable[[str, str], Any], default: str | None = None) -> Any:
    return field(metadata={"var": Var(name, parse, default)})


def nested(settings: type) -> Any:
    """A field holding another deployable's settings, read from the same environment."""
    return field(metadata={"settings": settings})


class EnvSettings:
    """Base of each deployable's settings class (a frozen dataclass of `var` and `nested` fields)."""

    DERIVED: ClassVar[tuple[str, ...]] = ()  # fields computed in `_complete`, not read

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        env = os.environ if env is None else env
        values = {}
        for f in dataclasses.fields(cls):
            if "settings" in f.metadata:
                values[f.name] = f.metadata["settings"].from_env(env)
            elif "var" in f.metadata:
                values[f.name] = f.metadata["var"].read(env)
        return cls._complete(env, values)

    @classmethod
    def _complete(cls, env: Mapping[str, str], values: dict) -> Self:
        """Rules between fields, and derived fields; the default has none."""
        return cls(**values)

    @classmethod
    def variables(cls) -> dict[str, Var]:
        """Field name → its variable, nested settings included."""
        found = {}
        for f in dataclasses.fields(cls):
            if "settings" in f.metadata:
                found.update(f.metadata["settings"].variables())
            elif "var" in f.metadata:
                found[f.name] = f.metadata["var"]
        return found

    @classmethod
    def environment(cls, **values: Any) -> dict[str, Any]:
        """The environment that gives these field values. Plain values are checked now; Pulumi
        Outputs (anything but str, int and float) pass through as they are."""
        known = cls.variables()
        model = values.pop("model", None)
        second_opinion = values.pop("second_opinion", None)
        unknown = set(values) - set(known)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
        env = {}
        if second_opinion is not None:
            beside = backends.get(backends.SECOND_OPINION)
            if isinstance(second_opinion, str):
                beside.check(second_opinion)
            env[beside.variable] = second_opinion
        if model is not None:
            # The variable that names the model is the backend's own (inspection/backends.py).
            backend = backends.get(str(values.get("backend", "none")))
            if isinstance(model, str):
                backend.check(model)
            if backend.variable:
                if backend.variable in env:
                    raise TypeError(f"{backend.variable} cannot name both the model and a second opinion")
                env[backend.variable] = model
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, (str, int, float)):
                known[name].parse(str(value), known[name].name)
                value = str(value)
            env[known[name].name] = value
        return env


# --- the deployables -------------------------------------------------------------------------------


GUARD_HINT = "<model>.guard.json the training scripts write beside the model (scripts/training/guard.py)"
GUARD_FILE = re.compile(r"^(gs://[a-z0-9][a-z0-9._-]{1,221}/)?[^\x00-\x1f]*\.json$")


@dataclass(frozen=True)
class PredictSettings(EnvSettings):
    """What the predict function (and the sweep, which runs its core) needs; docs/configure.md."""

    predictions_topic: str = var("PREDICTIONS_TOPIC", matching(r"^projects/[^/]+/topics/[^/]+$", TOPIC_HINT))
    prediction_bucket: str = var("PREDICTION_BUCKET", text("the prediction bucket's name"))
    inbound_bucket: str = var("INBOUND_BUCKET", text("the inbound bucket's name"))  # the only source
    backend: str = var("CLASSIFIER_BACKEND", choice(backends.NAMES))
    # The threshold move routes by: predict stores the anomaly map only of images that will go to a
    # person or to defect/ (a rollout in flight may cost an image its map, never its routing).
    threshold: float = var(
        "PREDICTION_THRESHOLD",
        lambda raw, key: parse_threshold(text(THRESHOLD_RANGE)(raw, key), key),
        str(DEFAULT_THRESHOLD),
    )
    # The model's location, read from the backend's own variable (VERTEX_ENDPOINT, ONNX_MODEL, …).
    model: str = field(metadata={"model": True})
    vertex_api_endpoint: str = var("VERTEX_API_ENDPOINT", optional, "")
    label_map: LabelMap = var("LABEL_MAP", lambda raw, key: LabelMap.parse(raw, key=key), "")
    max_upload_bytes: int = var(
        "MAX_UPLOAD_BYTES", integer(1024, 512 * 1024 * 1024), str(DEFAULT_LIMITS.max_bytes)
    )
    max_request_bytes: int = var(
        "MAX_REQUEST_BYTES", integer(64 * 1024, DEFAULT_MAX_REQUEST_BYTES), str(DEFAULT_MAX_REQUEST_BYTES)
    )
    min_image_side: int = var("MIN_IMAGE_SIDE", integer(1, 4096), str(DEFAULT_LIMITS.min_side))
    line_segment: int = var("LINE_SEGMENT", integer(0, 20), "1")  # which folder names the line
    max_image_pixels: int = var(
        "MAX_IMAGE_PIXELS", integer(10_000, 500_000_000), str(DEFAULT_LIMITS.max_pixels)
    )
    # The input guard in front of the model (inspection/model/guard.py): its guard.json, local or
    # gs://; or "none", to serve a model unguarded on purpose. Required when a model serves.
    input_guard: str = var("INPUT_GUARD", optional, "")
    # An anomaly model beside the classifier (ANOMALY_MODEL when the backend is another): a part the
    # classifier calls ok but the anomaly model finds unlike every good part goes to a person.
    second_opinion: str = field(default="", metadata={"model": True})

    @property
    def limits(self) -> Limits:
        return Limits(self.max_upload_bytes, self.min_image_side, self.max_image_pixels)

    @classmethod
    def _complete(cls, env: Mapping[str, str], values: dict) -> Self:
        backend = backends.get(values["backend"])
        values["model"] = backend.check(env.get(backend.variable, "")) if backend.variable else ""
        beside = backends.get(backends.SECOND_OPINION)
        if backend.name != beside.name and env.get(beside.variable, "").strip():
            if backend.name == "none":
                raise ConfigError(
                    f"{beside.variable} is a second opinion beside a classifier, and CLASSIFIER_BACKEND "
                    f"is none: set CLASSIFIER_BACKEND={beside.name} to serve it alone"
                )
            values["second_opinion"] = beside.check(env[beside.variable])
        guard = values["input_guard"]
        if backend.name != "none" and not guard:
            raise ConfigError(
                f"INPUT_GUARD is not set: a model serves behind its input guard, the {GUARD_HINT}; or "
                f"INPUT_GUARD={backends.NO_GUARD} to serve it unguarded, on purpose"
            )
        if guard and guard != backends.NO_GUARD and not GUARD_FILE.match(guard):
            raise ConfigError(f"INPUT_GUARD={guard!r} is not valid: expected the {GUARD_HINT}, or none")
        if backend.name == "vertex":
            values["vertex_api_endpoint"] = values["vertex_api_endpoint"] or backends.vertex_api_url(
                values["model"]
            )
        return cls(**values)


@dataclass(frozen=True)
class MoveSettings(EnvSettings):
    """What the move function needs; docs/configure.md."""

    prediction_bucket: str = var("PREDICTION_BUCKET", text("the prediction bucket's name"))
    threshold: float = var(
        "PREDICTION_THRESHOLD", lambda raw, key: parse_threshold(text(THRESHOLD_RANGE)(raw, key), key)
    )
    dead_letter_topic: str = var("DEAD_LETTER_TOPIC", matching(r"^projects/[^/]+/topics/[^/]+$", TOPIC_HINT))
    inbound_bucket: str = var("INBOUND_BUCKET", text("the inbound bucket's name"))  # the only source
    line_segment: int = var("LINE_SEGMENT", integer(0, 20), "1")  # which folder names the line


@dataclass(frozen=True)
class SweepSettings(EnvSettings):
    """What the re-drive sweep needs: predict's own settings (it finishes predict's work), and where
    to look for stranded images and held messages; see docs/pipeline.md, "Nothing is lost"."""

    predict: PredictSettings = nested(PredictSettings)
    inbound_bucket: str = var("INBOUND_BUCKET", text("the inbound bucket's name"))
    held_subscription: str = var(
        "HELD_SUBSCRIPTION", matching(r"^projects/[^/]+/subscriptions/[^/]+$", SUBSCRIPTION_HINT)
    )
    redrive_after_s: int = var("REDRIVE_AFTER_SECONDS", integer(1, 7 * 24 * 3600), "900")
    max_messages: int = var("REDRIVE_MAX_MESSAGES", integer(1, 1000), "100")


# --- the review app ----------------------------------------------------------------------------------
# Beside the functions' settings, so that the Pulumi program writes its environment without
# importing the review app.

AUTH_MODES = ("iap", "local")
ROLES = ("review", "audit", "both")  # what this deployment serves; both only in local mode


EVERYONE_IAP_ADMITS = "*"


def allow_list(raw: str, key: str) -> tuple[str, ...] | None:
    """`a@x.com,@factory.example`: emails and @domains, lowercased. `*`: None, whoever IAP admits
    (the program sets it when the stack lists a group, which the app cannot see into). Not set, or
    naming no one (" , "): nobody. Fail closed: a list forgotten admits no one."""
    if raw.strip() == EVERYONE_IAP_ADMITS:
        return None
    entries = tuple(e.strip().lower() for e in raw.split(",") if e.strip())
    for entry in entries:
        if entry.count("@") != 1 or (not entry.startswith("@") and entry.endswith("@")):
            raise ConfigError(f"{key} has {entry!r}: expected emails and @domains, comma-separated")
    return entries


IAP_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"


@dataclass(frozen=True)
class ReviewSettings(EnvSettings):
    """What the review app (review_app/) needs; docs/configure.md."""

    prediction_bucket: str = var("PREDICTION_BUCKET", text("the prediction bucket's name"))
    auth_mode: str = var("REVIEW_AUTH", choice(AUTH_MODES), "iap")  # local: no identity verified
    iap_audience: str = var("IAP_AUDIENCE", optional, "")
    iap_certs_url: str = var("IAP_CERTS_URL", optional, IAP_KEYS_URL)
    role: str = var("ROLE", choice(ROLES), "both")  # the program deploys one service per role
    allowed_reviewers: tuple[str, ...] | None = var("ALLOWED_REVIEWERS", allow_list, "")
    allowed_auditors: tuple[str, ...] | None = var("ALLOWED_AUDITORS", allow_list, "")
    lease_seconds: int = var("LEASE_SECONDS", integer(30, 3600), "300")
    undo_seconds: int = var("UNDO_SECONDS", integer(0, 3600), "120")
    signed_url_seconds: int = var("SIGNED_URL_SECONDS", integer(60, 3600), "300")
    line_segment: int = var("LINE_SEGMENT", integer(0, 20), "1")  # which folder names the line
    # Where the audit view reads the plant's records: bigquery:<project>.<dataset>, or the local
    # sink's folder (inspection/records.py). Required with IAP; the program sets it.
    records: str = var("RECORDS", optional, "")

    @classmethod
    def _complete(cls, env: Mapping[str, str], values: dict) -> Self:
        if values["auth_mode"] == "iap" and not values["iap_audience"].startswith("/projects/"):
            expected = "/projects/<project number>/apps/<project id>"
            raise ConfigError(f"IAP_AUDIENCE is not set: expected {expected} (REVIEW_AUTH=iap)")
        if values["auth_mode"] == "iap" and values["role"] == "both":
            raise ConfigError(
                "ROLE=both is for local mode: with IAP, reviewers and auditors are separate services "
                "(ROLE=review or ROLE=audit), each admitting only its own members"
            )
        if values["auth_mode"] == "iap" and values["role"] == "audit" and not values["records"]:
            raise ConfigError(
                "RECORDS is not set: expected bigquery:<project>.<dataset> (REVIEW_AUTH=iap; the Pulumi "
                "program sets it) or the local sink's folder"
            )
        return cls(**values)
