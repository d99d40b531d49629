"""The whole pipeline, composed from the components in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import identity, messaging
from infra.apis import Apis
from infra.config import Settings
from infra.functions import Functions
from infra.review import ReviewApp
from infra.storage import Buckets


@dataclass
class Stack:
    settings: Settings
    buckets: Buckets
    messaging: messaging.Messaging
    accounts: identity.Accounts
    functions: Functions
    push: pulumi.Resource
    review: ReviewApp


def build(settings: Settings) -> Stack:
    apis = Apis("apis", settings)
    after_apis = pulumi.ResourceOptions(depends_on=apis.all())
    accounts = identity.Accounts("accounts", settings, opts=after_apis)
    agents = identity.Agents(settings, apis.all())
    buckets = Buckets("buckets", settings, opts=after_apis)
    topics = messaging.Messaging("messaging", settings, opts=after_apis)

    # Triggers wait for their grants: the known first-deploy failure in fresh projects (gcp-facts.md).
    pipeline = identity.pipeline_grants(settings, accounts, agents, buckets, topics)
    token = identity.token_grants(accounts, agents)
    functions = Functions(
        "functions",
        settings,
        buckets=buckets,
        messaging=topics,
        accounts=accounts,
        grants=[*apis.all(), *pipeline, *token],
    )
    invocation = identity.invocation_grants(settings, accounts, functions)
    push = messaging.push_to_move(
        settings,
        topics,
        functions.move.service_config.apply(lambda c: c.uri),
        accounts.invoker.email,
        opts=pulumi.ResourceOptions(depends_on=[*invocation, *token]),
    )
    identity.dead_letter_grants(agents, topics, push)

    review = ReviewApp(
        "review",
        settings,
        buckets=buckets,
        accounts=accounts,
        project_number=agents.project_number,
        opts=after_apis,
    )
    identity.review_grants(settings, accounts, buckets, review)
    return Stack(settings, buckets, topics, accounts, functions, push, review)


NEXT_STEPS = """\
1. Upload a photo:   gcloud storage cp part.jpg gs://{inbound}/
2. Watch it routed:  gcloud storage ls -r gs://{prediction}/
3. Review unclear:   {review_url}  (reviewers: pulumi config set --path 'reviewers[N]' user:…)
4. Dead letters:     gcloud pubsub subscriptions pull {held} --limit 10
"""


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
        },
    )
    pulumi.export("function_uris", {"predict": f.predict.url, "move": f.move.url})
    pulumi.export("review_app_url", stack.review.url)
    pulumi.export(
        "service_accounts",
        {k: getattr(a, k).email for k in ("predict", "move", "review", "invoker", "builder")},
    )
    pulumi.export(
        "next_steps",
        pulumi.Output.all(
            inbound=b.inbound.name,
            prediction=b.prediction.name,
            review_url=stack.review.url,
            held=m.dead_letter_held.name,
        ).apply(lambda v: NEXT_STEPS.format(**v)),
    )
