"""The review app's environment, declared once (inspection/settings.py explains the seam)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from inspection.errors import ConfigError
from inspection.settings import EnvSettings, choice, integer, optional, text, var

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
    """What the review app needs; README "Configure"."""

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
