"""What every component is built from: the settings and the shared resources that depend on no
component. The function build and App Engine are built from this alone; everything after them
from the whole Context (infra/context.py), which adds them.

One value instead of seven keyword arguments on every component; each takes what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.config import Settings

if TYPE_CHECKING:  # only names their types: these modules never import this one
    from infra.apis import Apis
    from infra.iam import CustomRoles
    from infra.identity import Accounts, Agents
    from infra.messaging import Messaging
    from infra.storage import Buckets


@dataclass(frozen=True)
class Foundation:
    settings: Settings
    apis: Apis
    accounts: Accounts
    agents: Agents
    roles: CustomRoles
    buckets: Buckets
    messaging: Messaging
