"""The whole pipeline, composed from the components in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import identity, messaging
from infra.apis import Apis
from infra.build import FunctionBuild
from infra.config import Settings
from infra.context import Context
from infra.foundation import Foundation
from infra.functions import Functions
from infra.iam import CustomRoles, Grant
from infra.monitoring import Monitoring
from infra.project import AppEngine
from infra.push import PushToMove
from infra.records import Records
from infra.review import ReviewApp
from infra.storage import Buckets
from infra.sweep import Sweep
from inspection import backends


@dataclass
class Stack:
    settings: Settings
    buckets: Buckets
    messaging: messaging.Messaging
    accounts: identity.Accounts
    functions: Functions
    push: PushToMove
    sweep: Sweep
    records: Records
    review: ReviewApp
    components: list

    def grants(self) -> list[Grant]:
        """Every grant, from the components that declare them."""
        return [grant for component in self.components for grant in getattr(component, "grants", [])]


def build(settings: Settings) -> Stack:
    apis = Apis("apis", settings)
    foundation = Foundation(
        settings=settings,
        apis=apis,
        accounts=identity.Accounts("accounts", settings, after=[apis.service("iam")]),
        agents=identity.Agents(settings, apis),
        roles=CustomRoles("roles", settings, after=[apis.service("iam")]),
        buckets=Buckets("buckets", settings, apis),
        messaging=messaging.Messaging("messaging", settings, apis),
    )
    records = Records("records", foundation, app_services=(f"{settings.prefix}-review",))
    ctx = Context.of(
        foundation,
        FunctionBuild("function-build", foundation),
        AppEngine("app-engine", foundation),
        records,
    )
    functions = Functions("functions", ctx)
    push = PushToMove("push-to-move", ctx, move=functions.move)
    sweep = Sweep("sweep", ctx)
    review = ReviewApp("review", ctx)
    Monitoring("monitoring", ctx)
    return Stack(
        settings,
        ctx.buckets,
        ctx.messaging,
        ctx.accounts,
        functions,
        push,
        sweep,
        records,
        review,
        components=[ctx.build, ctx.app_engine, functions, push, sweep, records, review],
    )


NEXT_STEPS = """\
1. Upload a photo:   gcloud storage cp part.jpg gs://{inbound}/
2. Watch it routed:  gcloud storage ls -r gs://{prediction}/
3. Review unclear:   {review_url}  (reviewers: pulumi config set --path 'reviewers[N]' user:…)
4. Dead letters:     gcloud pubsub subscriptions pull {held} --limit 10
5. Re-drive now:     python -m scripts.sweep --job {job}
6. Audit:            {audit_url}  (auditors: pulumi config set --path 'auditors[N]' user:…)
7. The records:      bq query --use_legacy_sql=false 'SELECT COUNT(*) FROM `{records}.*`'
"""


def guard_output(s: Settings) -> str:
    """What stands between the model and the plant's photos, said where every `pulumi up` shows it."""
    if not s.has_model:
        return "no model: a person decides every photo"
    if s.input_guard == backends.NO_GUARD:
        return (
            "NONE (inputGuard none): photos unlike the model's training photos are auto-decided; "
            "the plant report counts them"
        )
    return s.input_guard


def export(stack: Stack) -> None:
    b, m, a, f = stack.buckets, stack.messaging, stack.accounts, stack.functions
    pulumi.export(
        "buckets",
        {
            "training": b.training.name,
            "inbound": b.inbound.name,
            "prediction": b.prediction.name,
            "sources": b.sources.name,
        },
    )
    pulumi.export(
        "topics",
        {
            "predictions": m.predictions.name,
            "dead_letter": m.dead_letter.name,
            "dead_letter_subscription": m.dead_letter_held.name,
            "push_subscription": stack.push.subscription.name,
        },
    )
    pulumi.export(
        "function_uris",
        {"predict": f.predict.uri, "move": f.move.uri, "sweep": stack.sweep.sweep.uri},
    )
    pulumi.export("input_guard", guard_output(stack.settings))
    pulumi.export("review_app_url", stack.review.url)
    pulumi.export("audit_url", stack.review.audit_url)
    pulumi.export("records", stack.records.location)
    pulumi.export("redrive_job", stack.sweep.job.id)
    pulumi.export(
        "service_accounts",
        {k: account.email for k, account in a.all.items()},
    )
    pulumi.export(
        "next_steps",
        pulumi.Output.all(
            inbound=b.inbound.name,
            prediction=b.prediction.name,
            review_url=stack.review.url,
            audit_url=stack.review.audit_url,
            job=stack.sweep.job.id,
            held=m.dead_letter_held.name,
            records=stack.records.location.apply(lambda r: r.removeprefix("bigquery:")),
        ).apply(lambda v: NEXT_STEPS.format(**v)),
    )
