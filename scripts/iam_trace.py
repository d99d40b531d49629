"""The permission trace, checked against the program: every call a deployable makes is allowed by
the grants the program declares for its account, and every permission those grants give is used.

    .venv/bin/python -m scripts.iam_trace           run the workload, check, write docs/iam-trace.json
    .venv/bin/python -m scripts.iam_trace --check   the same, writing nothing

The calls come from scripts/local/trace.py (a fixed workload through every deployable on the
emulators, under the example stack's names). Each call becomes the permissions Google checks for
it (scripts/program/permission_map.py), on the resource it names. The grants come from the program itself,
run under mocks with the setting the call was made in (scripts/program/mocks.py VARIANTS): a grant allows a
call when its role holds the permission (predefined roles from the dated snapshot
scripts/program/iam_roles.json, custom roles from infra/iam.py), it is on that resource or one above it, and
its IAM condition, evaluated by a real CEL implementation, admits the resource's name.

Three findings fail it:
- missing: a call no grant allows (in the field, a 403), named with the line of code that made it;
- unused: a permission a grant gives that no traced call needed, unless the grant says why
  (`untraced=` where it is declared); grants the platform uses for the principal (`used_by`, e.g.
  App Engine's build) are not the code's to use;
- stale: a grant that says why a permission is untraced, when every one of them is traced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from inspection import layout

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "docs" / "iam-trace.json"
ROLES = ROOT / "scripts" / "program" / "iam_roles.json"
DEPLOYABLES = ("predict", "move", "sweep", "review", "audit")
# The folders our code names (inspection/layout.py); anything else is a name a camera chose.
FOLDERS = frozenset(
    {
        *layout.ROUTED_FOLDERS,
        *(layout.QUARANTINE, layout.CLAIMS, "review", layout.HUMAN_DECIDED, layout.BACKFILL),
        *(layout.REDRIVE, layout.HEATMAPS, "models"),
    }
)


@dataclass(frozen=True)
class Binding:
    """One grant, resolved: who, which role, on what, under which condition, and the ledger row."""

    member: str
    role: str
    scope: str  # the resource the grant is on: a bucket, topic, … (full name); a project: projects/P
    condition: str  # a CEL expression, or ""
    row: dict = field(hash=False, compare=False)

    @property
    def used_by(self) -> str:
        return self.row.get("used_by", "")

    @property
    def untraced(self) -> str:
        return self.row.get("untraced", "")

    def label(self) -> str:
        row = self.row
        condition = f", condition: {row['condition']}" if row.get("condition") else ""
        return f"`{row['role']}` on {row['resource']}{condition}"


@dataclass
class Program:
    """The program under mocks with one setting: its grants, and each deployable's account."""

    variant: str
    project: str = ""
    prefix: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # deployable → serviceAccount:…
    bindings: list[Binding] = field(default_factory=list)
    custom: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role name → permissions

    @classmethod
    @cache
    def of(cls, variant: str) -> Program:
        from infra import iam
        from scripts.program.mocks import VARIANTS, dev_config, run_program

        config = dev_config(**VARIANTS[variant])
        program = cls(variant, config["gcp:project"], config["quality-inspection:prefix"])
        mocks, ledger = run_program(config)
        role = f"projects/{program.project}/roles/{program.prefix.replace('-', '_')}_"
        program.custom = {role + key: permissions for key, (_, permissions) in iam.CUSTOM_ROLES.items()}
        for r in mocks.resources:
            inputs = r["inputs"]
            if r["type"] == "gcp:cloudfunctionsv2/function:Function":
                deployable = inputs["name"].removeprefix(program.prefix + "-")
                email = inputs["serviceConfig"]["serviceAccountEmail"]
            elif r["type"] == "gcp:appengine/standardAppVersion:StandardAppVersion":
                deployable = inputs["service"].removeprefix(program.prefix + "-")
                email = inputs.get("serviceAccount", "")
            else:
                continue
            if deployable in DEPLOYABLES:
                program.accounts[deployable] = f"serviceAccount:{email}"
        by_name = {(r["name"], r["type"]): r["inputs"] for r in mocks.resources}
        for row in ledger:
            kind, name = row["urn"].rsplit("$", 1)[-1].rsplit("::", 1)
            inputs = by_name[(name, kind)]
            scope = _scope(kind, inputs)
            if scope:
                condition = (inputs.get("condition") or {}).get("expression", "")
                program.bindings.append(Binding(row["principal"], row["role"], scope, condition, row))
        return program

    @property
    def dataset(self) -> str:
        return f"{self.prefix.replace('-', '_')}_records"

    def permissions(self, role: str) -> frozenset[str]:
        if role in self.custom:
            return frozenset(self.custom[role])
        return frozenset(_roles()["roles"][role])

    def resolve(self, resource: str, deployable: str) -> str:
        """Stand-ins record the names the cloud code would use (inspection/calls.py)."""
        email = self.accounts.get(deployable, "").removeprefix("serviceAccount:")
        return resource.format(project=self.project, records=self.dataset, own=email)

    def allowing(self, member: str, permission: str, resource: str) -> list[Binding]:
        return [
            b
            for b in self.bindings
            if b.member == member
            and permission in self.permissions(b.role)
            and _covers(b.scope, resource, self.project)
            and (not b.condition or _admits(b.condition, resource))
        ]


def _scope(kind: str, inputs: dict) -> str:
    """The full resource name an IAM member resource grants on; "" for what no call names."""
    project = inputs.get("project", "")
    if kind == "gcp:storage/bucketIAMMember:BucketIAMMember":
        return f"projects/_/buckets/{inputs['bucket']}"
    if kind == "gcp:pubsub/topicIAMMember:TopicIAMMember":
        return f"projects/{project}/topics/{inputs['topic'].rsplit('/', 1)[-1]}"
    if kind == "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember":
        return f"projects/{project}/subscriptions/{inputs['subscription'].rsplit('/', 1)[-1]}"
    if kind == "gcp:projects/iAMMember:IAMMember":
        return f"projects/{project}"
    if kind == "gcp:serviceaccount/iAMMember:IAMMember":
        return "projects/-/serviceAccounts/" + inputs["serviceAccountId"].rsplit("/", 1)[-1]
    if kind == "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember":
        return f"projects/{project}/locations/{inputs['location']}/endpoints/{inputs['endpoint']}"
    if kind == "gcp:bigquery/datasetIamMember:DatasetIamMember":
        return f"projects/{project}/datasets/{inputs['datasetId']}"
    return ""


def _covers(scope: str, resource: str, project: str) -> bool:
    """A grant on `scope` reaches `resource`: the resource itself, what it contains, or, for a
    project, everything of the project (the stack's buckets and accounts are all in it)."""
    if resource == scope or resource.startswith(scope + "/"):
        return True
    if scope == f"projects/{project}":
        owned = resource.startswith(("projects/_/buckets/", f"projects/{project}/"))
        account = resource.startswith("projects/-/serviceAccounts/") and resource.endswith(
            f"@{project}.iam.gserviceaccount.com"
        )
        return owned or account
    return False


@cache
def _program(expression: str):
    import celpy

    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def _admits(expression: str, resource: str) -> bool:
    import celpy

    activation = {"resource": celpy.json_to_cel({"name": resource, "type": "", "service": ""})}
    return bool(_program(expression).evaluate(activation))


@cache
def _roles() -> dict:
    return json.loads(ROLES.read_text())


# --- from calls to permissions ----------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Use:
    """One permission one call needs, on one resource."""

    deployable: str
    setting: str
    permission: str
    resource: str
    method: str
    origin: str = ""


def uses(calls) -> list[Use]:
    from scripts.program.permission_map import SOURCE, needs

    found = []
    for call in calls:
        if call.deployable not in DEPLOYABLES:
            continue
        program = Program.of(call.setting)
        for need in needs(call.method):
            if need.only_when == "overwrote" and not call.overwrote:
                continue
            target = (
                call.source if need.on == SOURCE else call.resource
            )  # its target, or a copy's destination
            resource = program.resolve(target, call.deployable)
            found.append(
                Use(call.deployable, call.setting, need.permission, resource, call.method, call.origin)
            )
    return sorted(set(found))


@dataclass
class Findings:
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    exercised: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (variant, urn) → perms

    def __bool__(self) -> bool:
        return bool(self.missing or self.unused or self.stale)

    def report(self) -> str:
        parts = []
        for title, items in (
            ("calls no grant allows (a 403 in the field)", self.missing),
            ("permissions granted and never used (remove them, or say why with untraced=)", self.unused),
            ("grants that say why a permission is untraced, though all are used", self.stale),
        ):
            if items:
                parts.append(f"{title}:\n" + "\n".join(f"  - {i}" for i in items))
        return "\n".join(parts) or "every traced call is granted, and every granted permission is used"


def check(calls) -> Findings:
    findings = Findings()
    for use in uses(calls):
        program = Program.of(use.setting)
        member = program.accounts[use.deployable]
        allowing = program.allowing(member, use.permission, use.resource)
        if not allowing:
            findings.missing.append(
                f"{use.deployable}: {use.permission} on {use.resource} ({use.method}, at {use.origin or '?'})"
            )
        for binding in allowing:
            findings.exercised.setdefault((use.setting, binding.row["urn"]), set()).add(use.permission)
    settings = sorted({c.setting for c in calls})
    for setting in settings:
        program = Program.of(setting)
        members = {m: d for d, m in program.accounts.items()}
        for binding in program.bindings:
            if binding.member not in members or binding.used_by:
                continue
            used = set().union(*(findings.exercised.get((s, binding.row["urn"]), set()) for s in settings))
            idle = sorted(program.permissions(binding.role) - used)
            who = members[binding.member]
            if idle and not binding.untraced:
                line = f"{who}: {binding.label()}: {', '.join(idle)}"
                if line not in findings.unused:
                    findings.unused.append(line)
            if binding.untraced and not idle:
                line = f"{who}: {binding.label()}"
                if line not in findings.stale:
                    findings.stale.append(line)
    return findings


# --- the summary docs/iam.md shows ------------------------------------------------------------------


def pattern(resource: str) -> str:
    """A resource as the docs show it: an object by its folder (unclear/…), not its name."""
    found = re.match(r"^(projects/_/buckets/[^/]+/objects/)(.*)$", resource)
    if not found:
        return resource
    head, name = found.groups()
    parts = name.split("/")
    if parts[0] not in FOLDERS:  # a photo's own name (inbound): its line is not a folder of ours
        return f"{head}…"
    keep = 2 if parts[0] in ("review", "human_decided", "backfill") and len(parts) > 2 else 1
    folder = "/".join(parts[:keep]) if len(parts) > keep else ""
    return f"{head}{folder}/…" if folder else f"{head}…"


def summary(calls) -> list[dict]:
    """Per deployable, each permission used on each kind of resource, and by which methods."""
    grouped: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for use in uses(calls):
        grouped[(use.deployable, use.permission, pattern(use.resource))].add(use.method)
    return [
        {"deployable": d, "permission": p, "resource": r, "methods": sorted(m)}
        for (d, p, r), m in sorted(grouped.items())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.iam_trace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on any finding")
    args = parser.parse_args(argv)
    from inspection import logs
    from scripts.local import trace

    with open(os.devnull, "w") as quiet:  # the workload's own log lines are not this command's output
        logs.send_to(quiet)
        try:
            calls = trace.run()
        finally:
            logs.send_to(None)
    findings = check(calls)
    print(findings.report())
    if not args.check:
        SUMMARY.write_text(json.dumps(summary(calls), indent=1) + "\n")
        print(f"{SUMMARY.relative_to(ROOT)} written")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
