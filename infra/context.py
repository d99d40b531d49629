"""What every component is built from: the settings and the shared resources made before it.

One value instead of seven keyword arguments on every component; each component takes what it
needs from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.config import Settings

if TYPE_CHECKING:  # the components import Context; Context only names their types
    from infra.apis import Apis
    from infra.build import FunctionBuild
    from infra.iam import CustomRoles
    from infra.identity import Accounts, Agents
    from infra.messaging import Messaging
    from infra.project import AppEngine
    from infra.storage import Buckets


@dataclass(frozen=True)
class Context:
    settings: Settings
    apis: Apis
    accounts: Accounts
    agents: Agents
    roles: CustomRoles
    buckets: Buckets
    messaging: Messaging
    app_engine: AppEngine | None = None  # once it exists
    build: FunctionBuild | None = None  # once it exists
