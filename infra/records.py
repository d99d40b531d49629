"""The plant's records in the cloud: a BigQuery dataset, and a Logging sink that delivers into it
exactly this stack's record lines (inspection/outcomes.py), with the grants to write and read them.

Facts this relies on (docs/gcp-rules.md, "Records"):
- a sink to BigQuery writes as its writer identity, which needs `roles/bigquery.dataEditor` on the
  dataset; with `use_partitioned_tables` the tables are partitioned by the entry's timestamp
  (https://cloud.google.com/logging/docs/export/bigquery);
- entries reach the dataset within seconds to minutes of being written
  (https://cloud.google.com/logging/docs/export/configure_export_v2);
- running a query needs `bigquery.jobs.create` on the project, the smallest resource it is granted on
  (https://cloud.google.com/bigquery/docs/access-control#bigquery.jobUser): the audit view and the
  report readers get this stack's custom role with that one permission. A binding of the predefined
  `roles/bigquery.jobUser` would be the same binding as another stack's for the same person, so it
  could be neither owned nor revoked by one stack.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.foundation import Foundation
from infra.iam import Grant, Grants, MemberKey, member_key, sa
from infra.kept import kept
from infra.waits import propagation_wait
from inspection import events

DAY_MS = 24 * 3600 * 1000


def record_filter(prefix: str, functions: tuple[str, ...], app_services: tuple[str, ...]) -> str:
    """The Logging query for this stack's record lines, and nothing else
    (https://cloud.google.com/logging/docs/view/logging-query-language)."""
    runs = " OR ".join(f'resource.labels.service_name="{prefix}-{f}"' for f in functions)
    apps = " OR ".join(f'resource.labels.module_id="{s}"' for s in app_services)
    return (
        f'((resource.type="cloud_run_revision" AND ({runs})) OR (resource.type="gae_app" AND ({apps}))) '
        f"AND jsonPayload.{events.RECORD_FIELD}>={events.RECORD_SCHEMA}"
    )


class Records(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Foundation, *, app_services: tuple[str, ...], opts=None):
        super().__init__("quality-inspection:records:Records", name, None, opts)
        s, apis = ctx.settings, ctx.apis
        dataset_id = f"{s.prefix.replace('-', '_')}_records"
        self.dataset = gcp.bigquery.Dataset(
            "records-dataset",
            project=s.project,
            dataset_id=dataset_id,
            location=s.records_location,
            friendly_name=f"quality-inspection {s.prefix} records",
            description="Every outcome of every image (routed, rejected, decided, undone), from the logs",
            default_partition_expiration_ms=s.records_retention_days * DAY_MS or None,
            delete_contents_on_destroy=False,
            labels=s.labels,
            # the plant's records: destroy leaves them, the next `up` adopts them (infra/kept.py)
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self, depends_on=[apis.service("bigquery")]),
                kept(s, f"projects/{s.project}/datasets/{dataset_id}"),
            ),
        )
        self.location = pulumi.Output.concat("bigquery:", s.project, ".", self.dataset.dataset_id)
        self.sink = gcp.logging.ProjectSink(
            "records-sink",
            project=s.project,
            name=f"{s.prefix}-records",
            description="This stack's record lines, into its records dataset (docs/operations.md)",
            destination=pulumi.Output.concat(
                "bigquery.googleapis.com/projects/", s.project, "/datasets/", self.dataset.dataset_id
            ),
            filter=record_filter(s.prefix, ("predict", "move", "sweep"), app_services),
            unique_writer_identity=True,
            bigquery_options={"use_partitioned_tables": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[apis.service("logging")]),
        )
        self.grants = self._grants(ctx)
        # A record line written before the sink may write into the dataset is lost: whatever writes
        # them (the functions, the review app) waits for this (docs/gcp-rules.md, "Records").
        [writer] = [g for g in self.grants if g.principal is self.sink.writer_identity]
        self.delivery = propagation_wait("wait-iam-records-sink", s, self, [writer])
        self.register_outputs({"dataset": self.dataset.dataset_id, "records": self.location})

    def _grants(self, ctx: Foundation) -> list[Grant]:
        """The sink writes the records; the audit service and the report readers read them."""
        s, apis, accounts = ctx.settings, ctx.apis, ctx.accounts
        iam = Grants(self, [apis.service("bigquery"), apis.service("cloudresourcemanager")])
        iam.dataset(
            "iam-records-sink-writer",
            self.dataset,
            self.sink.writer_identity,
            "roles/bigquery.dataEditor",
            "the Logging sink writes this stack's record lines into the records dataset, and nowhere else",
        )
        readers = [(MemberKey("iam-audit"), sa(accounts.audit.email), "the audit view", False)]
        readers += [
            (member_key("iam-reader", m, s.report_readers), m, "a configured report reader", True)
            for m in s.report_readers
        ]
        for key, member, who, outside in readers:
            iam.dataset(
                key.suffixed("-records-read"),
                self.dataset,
                member,
                "roles/bigquery.dataViewer",
                f"{who} reads the plant's records (the report, the audit), and only this stack's",
                untraced=""
                if outside
                else "BigQuery checks the permissions a query job needs on the tables it reads; the rest "
                "of the dataset reader role is metadata of this one dataset",
            )
            # This stack's own role: the binding is this stack's alone, so a member who leaves the
            # config loses it, and another stack's binding of the same member is not touched.
            iam.project(
                key.suffixed("-records-jobs"),
                s.project,
                member,
                ctx.roles.name("queryJobs"),
                f"{who} runs the queries that read the records; BigQuery grants job creation on the "
                "project only",
            )
        return iam.grants
