"""Declared waits (`pulumiverse_time.Sleep`) where Google Cloud needs time before the next step.

A Sleep waits only when it is created. Each one here carries `triggers` naming what it waits for
(the grants, the metrics), so that adding a grant later replaces the Sleep and the resources after
it wait again (docs/gcp-rules.md, "Waiting").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumiverse_time as time

from infra.config import Settings
from infra.iam import Grant


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:32]


def grant_identity(grant: Grant) -> pulumi.Output[str]:
    """What makes a grant the grant it is: member, role, resource and condition."""
    return pulumi.Output.all(grant.principal, grant.role, grant.target, grant.condition).apply(
        lambda parts: "|".join(str(p) for p in parts)
    )


def propagation_wait(
    name: str,
    settings: Settings,
    parent: pulumi.Resource,
    grants: Sequence[Grant],
    others: Sequence[pulumi.Resource] = (),
) -> time.Sleep:
    """A wait after `grants` (and `others`) for IAM propagation, repeated whenever the grants change."""
    identities = pulumi.Output.all(*(grant_identity(g) for g in grants)).apply(_digest)
    return time.Sleep(
        name,
        create_duration=settings.iam_propagation,
        triggers={"grants": identities},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*(g.resource for g in grants), *others]),
    )


def metrics_wait(name: str, settings: Settings, parent: pulumi.Resource, metrics: dict) -> time.Sleep:
    """A wait after new log-based metrics, before anything that names them: Monitoring answers 404
    "Cannot find metric(s)" for minutes after a metric is made."""
    names = pulumi.Output.all(*(m.name for m in metrics.values())).apply(lambda n: _digest(list(n)))
    return time.Sleep(
        name,
        create_duration=settings.metric_propagation,
        triggers={"metrics": names},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(metrics.values())),
    )
