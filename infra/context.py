"""What every component is built from: the settings and the shared resources made before it.

One value instead of seven keyword arguments on every component; each component takes what it
needs from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    apis: Any  # infra.apis.Apis
    accounts: Any  # infra.identity.Accounts
    agents: Any  # infra.identity.Agents
    roles: Any  # infra.iam.CustomRoles
    buckets: Any  # infra.storage.Buckets
    messaging: Any  # infra.messaging.Messaging
    build: Any = None  # infra.build.FunctionBuild, once it exists
