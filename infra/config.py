"""Stack configuration, read once into one frozen, validated object.

A bad value stops `pulumi up` before anything is created, with a message that names the key and
says how to fix it. Components take `Settings`, never `pulumi.Config`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

# The same rules the functions apply at start, so a value Pulumi accepts is one they accept.
from inspection import routing
from inspection.labels import LabelMap
from inspection.settings import CLASSIFIER_BACKENDS, parse_int

MODEL_URL = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}/(.+/)?[^/]+$")
PREFIX = re.compile(r"^[a-z][a-z0-9-]{2,18}[a-z0-9]$")
MEMBER = re.compile(r"^(user|group|domain|serviceAccount):[^\s,]+$")
AUDITOR = re.compile(r"^(user|domain):[^\s,]+$")
APP_ENGINE_LOCATION = re.compile(r"^[a-z]+(-[a-z]+)?[0-9]*$")
ENDPOINT_ID = re.compile(r"^[0-9]{1,25}$")
ACCOUNT_EMAIL = re.compile(r"^[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com$")
# The same list the predict function accepts: one config change switches between them.
BACKENDS = CLASSIFIER_BACKENDS


class ConfigError(Exception):
    """A stack setting is missing or invalid; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    prefix: str
    threshold: float
    backend: str
    vertex_endpoint_id: str
    vertex_region: str
    onnx_model: str
    tflite_model: str
    label_map: str
    reviewers: tuple[str, ...]
    auditors: tuple[str, ...]
    app_engine_location: str
    iap_client_id: str
    iap_client_secret: pulumi.Output[str] | str
    retention_days: int
    predict_max_instances: int
    move_max_instances: int
    pubsub_agent_token_creator: bool
    app_engine_build_account: str  # "" means the project's default Cloud Build account
    iam_propagation: str
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

    @property
    def has_model(self) -> bool:
        return self.backend != "none"

    def placed(self, kind: str) -> dict[str, str]:
        """Name, project and location of this stack's resource of `kind` (no random suffixes)."""
        return {"name": f"{self.prefix}-{kind}", "project": self.project, "location": self.region}

    @property
    def labels(self) -> dict[str, str]:
        return {"app": "quality-inspection", "prefix": self.prefix}

    @property
    def vertex_endpoint(self) -> str:
        return f"projects/{self.project}/locations/{self.vertex_region}/endpoints/{self.vertex_endpoint_id}"


def _fix(key: str, problem: str, how: str) -> ConfigError:
    return ConfigError(f"quality-inspection:{key} {problem}. Fix: {how}")


def _int(cfg: pulumi.Config, key: str, default: int, low: int, high: int) -> int:
    """The same integer rule the running code applies (inspection.settings.parse_int)."""
    try:
        return parse_int(cfg.get(key) or str(default), f"quality-inspection:{key}", low, high)
    except ValueError as exc:
        raise ConfigError(f"{exc}. Fix: pulumi config set {key} {default}") from None


def _matching(cfg: pulumi.Config, key: str, pattern: re.Pattern, rule: str, fix: str) -> str:
    value = cfg.get(key) or ""
    if not pattern.match(value):
        raise _fix(key, f"is {value!r}; {rule}", fix)
    return value


EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


def _emails(cfg: pulumi.Config) -> tuple[str, ...]:
    emails = tuple(_list(cfg, "alertEmails"))
    for email in emails:
        if not EMAIL.match(email):
            raise _fix(
                "alertEmails",
                f"has {email!r}, not an email address",
                "pulumi config set --path 'alertEmails[0]' quality-lead@example.com",
            )
    return emails


def _rate(raw: object, key: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value < 1:
        raise _fix(key, f"is {raw!r}, not a defect rate in (0, 1)", f"pulumi config set {key} 0.05")
    return value


def _baselines(cfg: pulumi.Config) -> dict[str, float]:
    """Per-line defect-rate baselines (p̄ of the control chart), e.g. measured by scripts.report."""
    raw = cfg.get_object("defectBaselines") or {}
    if not isinstance(raw, dict):
        raise _fix(
            "defectBaselines",
            "is not a map of line → rate",
            "pulumi config set --path 'defectBaselines.line-1' 0.04",
        )
    return {str(line): _rate(rate, f"defectBaselines.{line}") for line, rate in raw.items()}


def _bool(cfg: pulumi.Config, key: str, default: bool) -> bool:
    raw = (cfg.get(key) or str(default)).strip().lower()
    if raw not in ("true", "false"):
        raise _fix(key, f"is {raw!r}, not true or false", f"pulumi config set {key} {str(default).lower()}")
    return raw == "true"


def _list(cfg: pulumi.Config, key: str) -> list[str]:
    """A list key, as YAML or as a comma-separated string."""
    try:
        raw = cfg.get_object(key)
    except Exception:  # a plain string, not YAML
        raw = cfg.get(key)
    items = (raw.split(",") if isinstance(raw, str) else raw) or []
    return [str(item).strip() for item in items if str(item).strip()]


def _members(
    cfg: pulumi.Config, key: str, pattern: re.Pattern = MEMBER, kinds: str = "user:, group: or domain:"
) -> tuple[str, ...]:
    members = tuple(_list(cfg, key))
    for member in members:
        if not pattern.match(member):
            raise _fix(
                key,
                f"has {member!r}, which is not a {kinds} member",
                f"pulumi config set --path '{key}[0]' user:alice@example.com",
            )
    return members


def _reviewers(cfg: pulumi.Config) -> tuple[str, ...]:
    return _members(cfg, "reviewers")


def _auditors(cfg: pulumi.Config) -> tuple[str, ...]:
    """Auditors are people or whole domains: the app checks each request's email against them, and
    cannot see into a group."""
    return _members(cfg, "auditors", AUDITOR, "user: or domain:")


def load() -> Settings:
    """Read and validate the stack's configuration."""
    gcp = pulumi.Config("gcp")
    cfg = pulumi.Config("quality-inspection")
    project = gcp.get("project") or ""
    if not project:
        raise ConfigError("gcp:project is not set. Fix: pulumi config set gcp:project <your-project-id>")
    region = gcp.get("region") or ""
    if not region:
        raise ConfigError("gcp:region is not set. Fix: pulumi config set gcp:region europe-west4")

    prefix = _matching(
        cfg,
        "prefix",
        PREFIX,
        "it must be 4-20 characters of a-z, 0-9 and '-', starting with a letter",
        "pulumi config set prefix acme-qi",
    )

    try:
        threshold = routing.parse_threshold(
            cfg.get("predictionThreshold") or "0.9", "quality-inspection:predictionThreshold"
        )
    except ValueError as exc:
        raise ConfigError(
            f"{exc}. Fix: pulumi config set predictionThreshold 0.9 (see README: choosing the threshold)"
        ) from None

    # Day zero has no model: every image goes to reviewers until one is trained (README: deploy).
    backend = (cfg.get("classifierBackend") or "none").lower()
    if backend not in BACKENDS:
        raise _fix(
            "classifierBackend",
            f"is {backend!r}, not one of {', '.join(BACKENDS)}",
            "pulumi config set classifierBackend none (until a model is trained)",
        )
    endpoint_id = cfg.get("vertexEndpointId") or ""
    onnx_model = cfg.get("onnxModel") or ""
    if backend == "vertex" and not ENDPOINT_ID.match(endpoint_id):
        raise _fix(
            "vertexEndpointId",
            f"is {endpoint_id!r}, not a Vertex AI endpoint id (digits)",
            "deploy a model with `python -m scripts.training.train_vertex … --deploy`, which prints "
            "the exact `pulumi config set vertexEndpointId …` line",
        )
    if backend == "onnx" and not MODEL_URL.match(onnx_model):
        raise _fix(
            "onnxModel",
            f"is {onnx_model!r}, not gs://<bucket>/<folder>/<model>.onnx",
            f"pulumi config set onnxModel gs://{prefix}-training/models/model.onnx",
        )
    tflite_model = cfg.get("tfliteModel") or ""
    if backend == "tflite" and (not MODEL_URL.match(tflite_model) or not tflite_model.endswith(".tflite")):
        raise _fix(
            "tfliteModel",
            f"is {tflite_model!r}, not gs://<bucket>/<folder>/model.tflite (dict.txt beside it)",
            f"pulumi config set tfliteModel gs://{prefix}-training/models/edge/model.tflite",
        )
    build_account = cfg.get("appEngineBuildAccount") or ""
    if build_account and not ACCOUNT_EMAIL.match(build_account):
        raise _fix(
            "appEngineBuildAccount",
            f"is {build_account!r}, not a service account email",
            "pulumi config rm appEngineBuildAccount (the project's default Cloud Build account)",
        )
    propagation = cfg.get("iamPropagationWait") or "90s"
    if not re.fullmatch(r"([0-9]{1,3})s", propagation) or not 0 <= int(propagation[:-1]) <= 600:
        raise _fix(
            "iamPropagationWait",
            f"is {propagation!r}, not 0s to 600s",
            "pulumi config set iamPropagationWait 90s",
        )

    location = _matching(
        cfg,
        "appEngineLocation",
        APP_ENGINE_LOCATION,
        "App Engine uses its own ids such as europe-west or us-central",
        "pulumi config set appEngineLocation europe-west (it cannot change once created)",
    )
    client_id = cfg.get("iapClientId") or ""
    if not client_id.endswith(".apps.googleusercontent.com"):
        raise _fix(
            "iapClientId",
            f"is {client_id!r}, not an OAuth client id",
            "create the OAuth client once in the console (README: the one manual step), then "
            "pulumi config set iapClientId <id>.apps.googleusercontent.com",
        )
    secret = cfg.get_secret("iapClientSecret")
    if secret is None:
        raise _fix("iapClientSecret", "is not set", "pulumi config set --secret iapClientSecret <secret>")

    label_map = cfg.get("labelMap") or ""
    try:
        LabelMap.parse(label_map, key="quality-inspection:labelMap")
    except ValueError as exc:
        raise ConfigError(f"{exc}. Fix: pulumi config set labelMap 'Defect=defect,Ok=ok'") from None

    return Settings(
        project=project,
        region=region,
        prefix=prefix,
        threshold=threshold,
        backend=backend,
        vertex_endpoint_id=endpoint_id,
        vertex_region=cfg.get("vertexRegion") or region,
        onnx_model=onnx_model,
        tflite_model=tflite_model,
        label_map=label_map,
        reviewers=_reviewers(cfg),
        auditors=_auditors(cfg),
        app_engine_location=location,
        iap_client_id=client_id,
        iap_client_secret=secret,
        retention_days=_int(cfg, "retentionDays", 30, 1, 365),
        predict_max_instances=_int(cfg, "predictMaxInstances", 10, 1, 1000),
        move_max_instances=_int(cfg, "moveMaxInstances", 10, 1, 1000),
        pubsub_agent_token_creator=_bool(cfg, "pubsubAgentTokenCreator", False),
        app_engine_build_account=build_account,
        iam_propagation=propagation,
        redrive_after_minutes=_int(cfg, "redriveAfterMinutes", 15, 1, 1440),
        redrive_every_minutes=_int(cfg, "redriveEveryMinutes", 10, 1, 30),
        line_segment=_int(cfg, "lineSegment", 1, 0, 20),
        alert_emails=_emails(cfg),
        stuck_inbound_minutes=_int(cfg, "stuckInboundMinutes", 30, 5, 1440),
        unclear_wait_hours=_int(cfg, "unclearWaitHours", 8, 1, 168),
        error_rate_percent=_int(cfg, "errorRatePercent", 5, 1, 100),
        defect_baseline=_rate(cfg.get("defectBaseline") or "0.05", "defectBaseline"),
        defect_baselines=_baselines(cfg),
        control_window_hours=_int(cfg, "controlWindowHours", 8, 1, 168),
        control_min_images=_int(cfg, "controlMinImages", 50, 1, 100000),
    )
