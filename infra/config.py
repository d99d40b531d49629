"""Stack configuration, read once into one frozen, validated object.

Every key is one row of `KEYS`: the stack key, the `Settings` field it fills, its parser, its
default (None: required) and how to fix a bad value. A bad value stops `pulumi up` before anything
is created, with a message that names the key, says what is wrong and how to fix it. Rules between
keys (a backend needs its model, the application's owner needs the OAuth client) follow the table.
Components take `Settings`, never `pulumi.Config`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pulumi

# The same rules the running code applies, so a value Pulumi accepts is one it accepts.
from inspection import backends, routing
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.settings import parse_int

__all__ = ["KEYS", "ConfigError", "Settings", "load"]

PREFIX = re.compile(r"^[a-z][a-z0-9-]{2,18}[a-z0-9]$")
MEMBER = re.compile(r"^(user|group|domain|serviceAccount):[^\s,]+$")
PERSON = re.compile(r"^(user|domain):[^\s,]+$")
APP_ENGINE_LOCATION = re.compile(r"^[a-z]+(-[a-z]+)?[0-9]*$")
ACCOUNT_EMAIL = re.compile(r"^[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com$")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
SECONDS = re.compile(r"^([0-9]{1,4})s$")
LINE = re.compile(r'^[^"\\\s][^"\\]{0,99}$')
DATASET_LOCATION = re.compile(r"^(US|EU|[a-z]+-[a-z]+[0-9])$")

# Whether this stack creates the project's one App Engine application, or finds it there (made by
# another stack, by this one before a destroy, or by hand): docs/deploy.md, "One project, several stacks".
APP_ENGINE_MODES = ("create", "existing")


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    prefix: str
    threshold: float
    backend: str
    model: str  # the model's location as predict reads it (inspection/backends.py); "" for none
    label_map: str
    reviewers: tuple[str, ...]
    auditors: tuple[str, ...]
    report_readers: tuple[str, ...]
    app_engine: str  # create | existing
    app_engine_location: str
    iap_client_id: str
    iap_client_secret: pulumi.Output[str] | str
    app_engine_build_account: str  # "" means the application's default service account
    retention_days: int
    predict_max_instances: int
    move_max_instances: int
    pubsub_agent_token_creator: bool
    iam_propagation: str
    metric_propagation: str
    redrive_after_minutes: int
    redrive_every_minutes: int
    line_segment: int
    alert_emails: tuple[str, ...]
    stuck_inbound_minutes: int
    unclear_wait_hours: int
    error_rate_percent: int
    defect_baseline: float
    defect_baselines: dict[str, float]
    control_window_hours: int
    control_min_images: int
    records_location: str
    records_retention_days: int
    # This prefix's kept resources (data buckets, records dataset, custom roles) are in the project
    # from an earlier `up` of a destroyed stack: adopt them (Pulumi's `import`) instead of creating.
    adopt_kept: bool = False
    # An anomaly model beside the classifier (the stack's anomalyModel when the backend is another
    # one): predict sends a part the classifier calls ok but the anomaly model does not to a person.
    second_opinion: str = ""
    # The model's input guard (inputGuard; inspection/model/guard.py): a gs:// guard.json, by default
    # the one beside a model file; backends.NO_GUARD when the stack serves the model unguarded.
    input_guard: str = ""

    @property
    def has_model(self) -> bool:
        return self.backend != "none"

    @property
    def app_engine_region(self) -> str:
        """App Engine's location ids `us-central` and `europe-west` are `us-central1` and
        `europe-west1` everywhere else (https://cloud.google.com/appengine/docs/standard/locations)."""
        location = self.app_engine_location
        return location if location[-1].isdigit() else f"{location}1"

    def placed(self, kind: str) -> dict[str, str]:
        """Name, project and location of this stack's resource of `kind` (no random suffixes)."""
        return {"name": f"{self.prefix}-{kind}", "project": self.project, "location": self.region}

    @property
    def labels(self) -> dict[str, str]:
        return {"app": "quality-inspection", "prefix": self.prefix}

    @property
    def model_backend(self) -> backends.Backend:
        return backends.get(self.backend)

    @property
    def keeps_heatmaps(self) -> bool:
        """Predict keeps anomaly maps: an anomaly model serves, alone or as a second opinion."""
        return any(backend.maps for backend, _ in self.served)

    @property
    def served(self) -> list[tuple[backends.Backend, str]]:
        """Each model predict opens, with its backend: the classifier's, and a second opinion's."""
        found = [(self.model_backend, self.model)] if self.model else []
        if self.second_opinion:
            found.append((backends.get(backends.SECOND_OPINION), self.second_opinion))
        return found


# --- parsers: (raw value, qualified key) → value; a problem raises ValueError saying what is wrong ---


def text(raw: Any, key: str) -> str:
    return str(raw).strip()


def matching(pattern: re.Pattern, rule: str) -> Callable[[Any, str], str]:
    def parse(raw: Any, key: str) -> str:
        value = str(raw).strip()
        if not pattern.match(value):
            raise ValueError(f"is {value!r}; {rule}")
        return value

    return parse


def one_of(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(raw: Any, key: str) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ValueError(f"is {value!r}, not one of {', '.join(options)}")
        return value

    return parse


def integer(low: int, high: int) -> Callable[[Any, str], int]:
    def parse(raw: Any, key: str) -> int:
        try:
            return parse_int(str(raw), key, low, high)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix(key).strip()) from None

    return parse


def boolean(raw: Any, key: str) -> bool:
    value = str(raw).strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"is {value!r}, not true or false")
    return value == "true"


def seconds(high: int) -> Callable[[Any, str], str]:
    def parse(raw: Any, key: str) -> str:
        value = str(raw).strip()
        found = SECONDS.fullmatch(value)
        if not found or int(found.group(1)) > high:
            raise ValueError(f"is {value!r}, not 0s to {high}s")
        return value

    return parse


def rate(raw: Any, key: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value < 1:
        raise ValueError(f"is {raw!r}, not a defect rate in (0, 1)")
    return value


def threshold(raw: Any, key: str) -> float:
    try:
        return routing.parse_threshold(raw, key)
    except ConfigError:
        raise ValueError(f"is {raw!r}, not {routing.THRESHOLD_RANGE}") from None


def label_map(raw: Any, key: str) -> str:
    try:
        LabelMap.parse(str(raw), key=key)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix(key).strip()) from None
    return str(raw)


def listing(item: Callable[[Any, str], Any]) -> Callable[[Any, str], tuple]:
    """A list, as YAML or as a comma-separated string, each item parsed by `item`."""

    def parse(raw: Any, key: str) -> tuple:
        items = raw.split(",") if isinstance(raw, str) else (raw or [])
        if not isinstance(items, list):
            raise ValueError("is not a list")
        return tuple(item(str(i).strip(), key) for i in items if str(i).strip())

    return parse


def members(kinds: re.Pattern, wanted: str) -> Callable[[Any, str], tuple]:
    """A list of IAM members. Google compares member emails without case, so two spellings of one
    member would be one binding declared twice: the second is refused, naming both."""
    parse_list = listing(member(kinds, wanted))

    def parse(raw: Any, key: str) -> tuple:
        found = parse_list(raw, key)
        seen: dict[str, str] = {}
        for m in found:
            if m.lower() in seen:
                raise ValueError(f"names one member twice: {seen[m.lower()]!r} and {m!r}")
            seen[m.lower()] = m
        return found

    return parse


def member(kinds: re.Pattern, wanted: str) -> Callable[[Any, str], str]:
    def parse(raw: Any, key: str) -> str:
        if not kinds.match(raw):
            raise ValueError(f"has {raw!r}, which is not a {wanted} member")
        return raw

    return parse


def email(raw: Any, key: str) -> str:
    if not EMAIL.match(raw):
        raise ValueError(f"has {raw!r}, not an email address")
    return raw


def baselines(raw: Any, key: str) -> dict[str, float]:
    """Per-line defect-rate baselines (p̄ of the control chart), e.g. measured by scripts.report."""
    if not isinstance(raw, dict):
        raise ValueError("is not a map of line → rate")
    found = {}
    for line, value in raw.items():
        if not LINE.match(str(line)):
            raise ValueError(
                f"has the line {line!r}: a line is up to 100 characters, without quotes or backslashes"
            )
        try:
            found[str(line)] = rate(value, key)
        except ValueError as exc:
            raise ValueError(f"has {line}: {value!r}, not a defect rate in (0, 1)") from exc
    return found


# --- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One stack key: where it is read, what it fills, how it is parsed, its default, its fix."""

    key: str  # `gcp:<key>`, or a key of this project (quality-inspection:<key>)
    field: str
    parse: Callable[[Any, str], Any]
    default: Any  # None: required
    fix: str
    structured: bool = False  # read as YAML (a list or map) when it is one
    secret: bool = False

    @property
    def qualified(self) -> str:
        return self.key if ":" in self.key else f"quality-inspection:{self.key}"


KEYS: tuple[Key, ...] = (
    Key(
        "gcp:project",
        "project",
        matching(re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"), "a project id"),
        None,
        "pulumi config set gcp:project <your-project-id>",
    ),
    Key(
        "gcp:region",
        "region",
        matching(re.compile(r"^[a-z]+-[a-z]+[0-9]$"), "a region such as europe-west4"),
        None,
        "pulumi config set gcp:region europe-west4",
    ),
    Key(
        "prefix",
        "prefix",
        matching(PREFIX, "it must be 4-20 characters of a-z, 0-9 and '-', starting with a letter"),
        None,
        "pulumi config set prefix acme-qi",
    ),
    Key(
        "predictionThreshold",
        "threshold",
        threshold,
        str(routing.DEFAULT_THRESHOLD),
        f"pulumi config set predictionThreshold {routing.DEFAULT_THRESHOLD} "
        "(docs/training.md: choosing the threshold)",
    ),
    Key(
        "classifierBackend",
        "backend",
        one_of(backends.NAMES),
        "none",
        "pulumi config set classifierBackend none (until a model is trained)",
    ),
    Key("labelMap", "label_map", label_map, "", "pulumi config set labelMap 'Defect=defect,Ok=ok'"),
    Key(
        "reviewers",
        "reviewers",
        members(MEMBER, "user:, group:, domain: or serviceAccount:"),
        (),
        "pulumi config set --path 'reviewers[0]' user:alice@example.com",
        structured=True,
    ),
    # Auditors are people or whole domains: the app checks each request's email against them.
    Key(
        "auditors",
        "auditors",
        members(PERSON, "user: or domain:"),
        (),
        "pulumi config set --path 'auditors[0]' user:auditor@example.com",
        structured=True,
    ),
    Key(
        "reportReaders",
        "report_readers",
        members(MEMBER, "user:, group:, domain: or serviceAccount:"),
        (),
        "pulumi config set --path 'reportReaders[0]' user:quality-lead@example.com",
        structured=True,
    ),
    Key(
        "appEngine",
        "app_engine",
        one_of(APP_ENGINE_MODES),
        "create",
        "pulumi config set appEngine create (the project's first stack, in a project without App Engine) "
        "or existing (the application is there: made by another stack, by this one before a destroy, "
        "or by hand)",
    ),
    Key(
        "appEngineLocation",
        "app_engine_location",
        matching(APP_ENGINE_LOCATION, "App Engine uses its own ids such as europe-west or us-central"),
        None,
        "pulumi config set appEngineLocation europe-west (it cannot change once created)",
    ),
    Key(
        "iapClientId",
        "iap_client_id",
        text,
        "",
        "create the OAuth client once in the console (docs/deploy.md, step 1: the one manual step), then "
        "pulumi config set iapClientId <id>.apps.googleusercontent.com",
    ),
    Key(
        "iapClientSecret",
        "iap_client_secret",
        text,
        "",
        "pulumi config set --secret iapClientSecret <secret>",
        secret=True,
    ),
    Key(
        "appEngineBuildAccount",
        "app_engine_build_account",
        lambda raw, key: matching(ACCOUNT_EMAIL, "not a service account email")(raw, key) if raw else "",
        "",
        "pulumi config rm appEngineBuildAccount (the application's default service account)",
    ),
    Key("retentionDays", "retention_days", integer(1, 365), 30, "pulumi config set retentionDays 30"),
    Key(
        "predictMaxInstances",
        "predict_max_instances",
        integer(1, 1000),
        10,
        "pulumi config set predictMaxInstances 10",
    ),
    Key(
        "moveMaxInstances",
        "move_max_instances",
        integer(1, 1000),
        10,
        "pulumi config set moveMaxInstances 10",
    ),
    Key(
        "pubsubAgentTokenCreator",
        "pubsub_agent_token_creator",
        boolean,
        "false",
        "pulumi config set pubsubAgentTokenCreator false",
    ),
    Key(
        "iamPropagationWait",
        "iam_propagation",
        seconds(600),
        "90s",
        "pulumi config set iamPropagationWait 90s",
    ),
    # Monitoring answers 404 on an alert policy naming a log-based metric for up to about 10
    # minutes after the metric is made (docs/gcp-rules.md, "Waiting").
    Key(
        "metricPropagationWait",
        "metric_propagation",
        seconds(1800),
        "600s",
        "pulumi config set metricPropagationWait 600s",
    ),
    Key(
        "redriveAfterMinutes",
        "redrive_after_minutes",
        integer(1, 1440),
        15,
        "pulumi config set redriveAfterMinutes 15",
    ),
    Key(
        "redriveEveryMinutes",
        "redrive_every_minutes",
        integer(1, 30),
        10,
        "pulumi config set redriveEveryMinutes 10",
    ),
    Key("lineSegment", "line_segment", integer(0, 20), 1, "pulumi config set lineSegment 1"),
    Key(
        "alertEmails",
        "alert_emails",
        listing(email),
        (),
        "pulumi config set --path 'alertEmails[0]' quality-lead@example.com",
        structured=True,
    ),
    Key(
        "stuckInboundMinutes",
        "stuck_inbound_minutes",
        integer(5, 1440),
        30,
        "pulumi config set stuckInboundMinutes 30",
    ),
    Key("unclearWaitHours", "unclear_wait_hours", integer(1, 168), 8, "pulumi config set unclearWaitHours 8"),
    Key("errorRatePercent", "error_rate_percent", integer(1, 100), 5, "pulumi config set errorRatePercent 5"),
    Key("defectBaseline", "defect_baseline", rate, "0.05", "pulumi config set defectBaseline 0.05"),
    Key(
        "defectBaselines",
        "defect_baselines",
        baselines,
        {},
        "pulumi config set --path 'defectBaselines.line-1' 0.04",
        structured=True,
    ),
    Key(
        "controlWindowHours",
        "control_window_hours",
        integer(1, 168),
        8,
        "pulumi config set controlWindowHours 8",
    ),
    Key(
        "controlMinImages",
        "control_min_images",
        integer(1, 100000),
        50,
        "pulumi config set controlMinImages 50",
    ),
    Key(
        "recordsLocation",
        "records_location",
        lambda raw, key: (
            matching(DATASET_LOCATION, "not a BigQuery location (US, EU or a region)")(raw, key)
            if raw
            else ""
        ),
        "",
        "pulumi config set recordsLocation europe-west4 (it cannot change once created)",
    ),
    Key(
        "adoptKept",
        "adopt_kept",
        boolean,
        "false",
        "pulumi config set adoptKept true, for the first `up` after a `destroy` of this prefix "
        "(docs/deploy.md: destroy, then up again)",
    ),
    # 0 keeps the records for ever; a quality system usually keeps them for the product's life.
    Key(
        "recordsRetentionDays",
        "records_retention_days",
        integer(0, 36500),
        0,
        "pulumi config set recordsRetentionDays 0 (keep for ever)",
    ),
)


def _raw(cfg: pulumi.Config, gcp: pulumi.Config, key: Key) -> Any:
    source, name = (gcp, key.key.split(":", 1)[1]) if key.key.startswith("gcp:") else (cfg, key.key)
    if key.secret:
        return source.get_secret(name)
    if key.structured:
        try:
            found = source.get_object(name)
        except Exception:  # a plain string, not YAML
            found = source.get(name)
        return found
    return source.get(name)


def _value(key: Key, raw: Any) -> Any:
    if key.secret:
        return raw if raw is not None else ""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if key.default is None:
            raise ConfigError(f"{key.qualified} is not set. Fix: {key.fix}")
        raw = key.default
    try:
        return key.parse(raw, key.qualified)
    except ValueError as exc:
        raise ConfigError(f"{key.qualified} {exc}. Fix: {key.fix}") from None


def _fix(key: str, problem: str) -> ConfigError:
    [row] = [k for k in KEYS if k.key == key]
    return ConfigError(f"{row.qualified} {problem}. Fix: {row.fix}")


def _complete(s: Settings, get: Callable[[str], str]) -> Settings:
    """The rules between keys."""
    model = s.model_backend.location_from_config(get, s.project, s.region)
    beside = backends.get(backends.SECOND_OPINION)
    [beside_key] = beside.config_keys
    second_opinion = ""
    if s.backend != beside.name and get(beside_key):
        if not s.has_model:
            raise ConfigError(
                f"quality-inspection:{beside_key} is a second opinion beside a classifier, and "
                "classifierBackend is none. Fix: pulumi config set classifierBackend anomaly, to serve "
                "the anomaly model alone"
            )
        second_opinion = beside.location_from_config(get, s.project, s.region)
    input_guard = _input_guard(s, model, get(GUARD_KEY).strip())
    if s.app_engine == "create":
        if not s.iap_client_id.endswith(".apps.googleusercontent.com"):
            raise _fix("iapClientId", f"is {s.iap_client_id!r}, not an OAuth client id")
        if not s.iap_client_secret:
            raise _fix("iapClientSecret", "is not set")
    return replace(
        s,
        model=model,
        second_opinion=second_opinion,
        input_guard=input_guard,
        records_location=s.records_location or s.region,
    )


GUARD_KEY = "inputGuard"
GUARD_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,221}/[^\x00-\x1f]+\.json$")


def _input_guard(s: Settings, model: str, given: str) -> str:
    """The guard predict checks photos with: inputGuard, else <model>.guard.json beside a model file."""
    key = f"quality-inspection:{GUARD_KEY}"
    if not s.has_model:
        return ""
    if given == backends.NO_GUARD:
        return given
    if given:
        if not GUARD_URI.match(given):
            raise ConfigError(
                f"{key} is {given!r}: expected gs://<bucket>/<path>.json, the guard.json the training "
                f"scripts wrote, or {backends.NO_GUARD}. Fix: pulumi config set {GUARD_KEY} gs://…/guard.json"
            )
        return given
    if s.model_backend.grant == backends.FOLDER_GRANT:
        return backends.guard_beside(model)
    raise ConfigError(
        f"{key} is not set, and a {s.backend} model has no folder to find it beside. Fix: pulumi config "
        f"set {GUARD_KEY} gs://…/guard.json (train_vertex prints it; python -m scripts.training.guard "
        f"fits one), or pulumi config set {GUARD_KEY} {backends.NO_GUARD} to serve it unguarded"
    )


def load() -> Settings:
    """Read and validate the stack's configuration."""
    gcp, cfg = pulumi.Config("gcp"), pulumi.Config("quality-inspection")
    values = {key.field: _value(key, _raw(cfg, gcp, key)) for key in KEYS}
    return _complete(Settings(model="", **values), lambda key: cfg.get(key) or "")
