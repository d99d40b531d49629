"""CrossGuard policy pack: `pulumi preview --policy-pack policy/` from the project root.

It needs its own environment (policy/requirements.txt): pulumi-policy pins protobuf 5, which
cannot share one with google-cloud-pubsub. The rules themselves are in rules.py.
"""

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rules  # rules.py sits beside this file


def _each_resource(args, report_violation) -> None:
    for message in rules.violations(args.resource_type, args.props):
        report_violation(message)


def _whole_stack(args, report_violation) -> None:
    resources = ((r.resource_type, r.name, r.props) for r in args.resources)
    for message in rules.shared_accounts(resources):
        report_violation(message)


PolicyPack(
    name="quality-inspection",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="least-privilege-and-private",
            description="No primitive or broader-than-the-work roles, public members, unconditioned "
            "project-level storage roles, bindings, keys, non-uniform or public buckets, default service "
            "accounts, undeclared image repositories, or App Engine versions kept forever.",
            validate=_each_resource,
        ),
        StackValidationPolicy(
            name="one-account-per-component",
            description="No two components run as the same service account.",
            validate=_whole_stack,
        ),
    ],
)
