"""Each request our deployables make, and the IAM permissions Google checks for it, on which resource.

Taken from Google's per-method tables, not from reading our code:
- Cloud Storage: https://cloud.google.com/storage/docs/access-control/iam-json ("IAM permissions for
  JSON methods"). Replacing an existing object needs storage.objects.delete as well as create; a
  copy or rewrite reads its source (get) and creates its destination. A listing is checked on the
  bucket, so an IAM condition on object names cannot admit it.
- Pub/Sub: https://cloud.google.com/pubsub/docs/access-control (publish on the topic; pull,
  acknowledge and modifyAckDeadline are all `pubsub.subscriptions.consume` on the subscription).
- Vertex AI online prediction: https://cloud.google.com/vertex-ai/docs/general/access-control
  (`aiplatform.endpoints.predict` on the endpoint).
- IAM signBlob: https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/signBlob
  (`iam.serviceAccounts.signBlob` on the signing account).
- BigQuery: https://cloud.google.com/bigquery/docs/access-control (a query job is created in the
  project; the tables it reads need getData; listing a dataset's tables needs tables.list).

iann0036/iam-dataset's `gcp/map.json` (https://github.com/iann0036/iam-dataset) is a public cross-
check: tests/test_permissions.py compares this table with it where both name a method.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = (
    "https://cloud.google.com/storage/docs/access-control/iam-json",
    "https://cloud.google.com/pubsub/docs/access-control",
    "https://cloud.google.com/vertex-ai/docs/general/access-control",
    "https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/signBlob",
    "https://cloud.google.com/bigquery/docs/access-control",
    "https://github.com/iann0036/iam-dataset",
)

# Where a permission is checked, relative to the request: its object (or bucket, topic, …), the
# source object of a copy, or the destination of a copy.
TARGET, SOURCE, DESTINATION = "target", "source", "destination"


@dataclass(frozen=True)
class Need:
    permission: str
    on: str = TARGET
    only_when: str = ""  # "overwrote": only when the request replaced a live object


STORAGE: dict[str, tuple[Need, ...]] = {
    "objects.get": (Need("storage.objects.get"),),
    "objects.list": (Need("storage.objects.list"),),  # on the bucket
    "objects.insert": (
        Need("storage.objects.create"),
        Need("storage.objects.delete", only_when="overwrote"),
    ),
    "objects.delete": (Need("storage.objects.delete"),),
    "objects.patch": (Need("storage.objects.update"),),
    "objects.update": (Need("storage.objects.update"),),
    "objects.rewrite": (
        Need("storage.objects.get", SOURCE),
        Need("storage.objects.create", DESTINATION),
        Need("storage.objects.delete", DESTINATION, only_when="overwrote"),
    ),
    "objects.copy": (
        Need("storage.objects.get", SOURCE),
        Need("storage.objects.create", DESTINATION),
        Need("storage.objects.delete", DESTINATION, only_when="overwrote"),
    ),
    "objects.compose": (
        Need("storage.objects.get", SOURCE),
        Need("storage.objects.create", DESTINATION),
        Need("storage.objects.delete", DESTINATION, only_when="overwrote"),
    ),
    "buckets.get": (Need("storage.buckets.get"),),
}

# Calls our adapters record (inspection/calls.py): the method names as the APIs spell them.
ADAPTERS: dict[str, tuple[Need, ...]] = {
    "pubsub.topics.publish": (Need("pubsub.topics.publish"),),
    "pubsub.subscriptions.pull": (Need("pubsub.subscriptions.consume"),),
    "pubsub.subscriptions.acknowledge": (Need("pubsub.subscriptions.consume"),),
    "pubsub.subscriptions.modifyAckDeadline": (Need("pubsub.subscriptions.consume"),),
    "aiplatform.endpoints.predict": (Need("aiplatform.endpoints.predict"),),
    "iamcredentials.serviceAccounts.signBlob": (Need("iam.serviceAccounts.signBlob"),),
    "bigquery.tables.list": (Need("bigquery.tables.list"),),
    "bigquery.jobs.create": (Need("bigquery.jobs.create"),),
    "bigquery.tables.getData": (Need("bigquery.tables.getData"),),
}

# The same methods as iam-dataset's map.json names them, for the cross-check.
DATASET_NAMES = {
    **{f"storage.{m}": m for m in STORAGE},
    "pubsub.topics.publish": "pubsub.topics.publish",
    "aiplatform.projects.locations.endpoints.predict": "aiplatform.endpoints.predict",
    "iamcredentials.projects.serviceAccounts.signBlob": "iamcredentials.serviceAccounts.signBlob",
}


def needs(method: str) -> tuple[Need, ...]:
    """What a request needs; KeyError for a request this table does not know (a test fails on it)."""
    if method in STORAGE:
        return STORAGE[method]
    return ADAPTERS[method]
