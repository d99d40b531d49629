"""What outlives `pulumi destroy`, and how the next `up` of the same prefix takes it back.

The plant's data (the training, inbound and prediction buckets, the records dataset) is never
deleted by a tool of ours, and the custom roles are never deleted either: a deleted role's id stays
taken until day 37 and can be undeleted only until day 7
(https://cloud.google.com/iam/docs/reference/rest/v1/projects.roles/delete), so a role deleted by
one `destroy` blocked the next `up` for a month. Each of these is retained on delete, so `destroy`
leaves it in the project and drops it from the stack.

The next `up` under the same prefix would create them again and get 409, so with
`adoptKept: true` it adopts each by its id instead (Pulumi's `import` resource option). Inputs that
differ from what is there are then updated, as for any resource
(https://www.pulumi.com/docs/iac/concepts/resources/options/import/). Once adopted, a resource in
the stack with the same import id is treated like any other, so leaving the key set is harmless
(https://github.com/pulumi/pulumi/blob/master/developer-docs/architecture/import.md).
"""

from __future__ import annotations

import pulumi

from infra.config import Settings


def kept(settings: Settings, import_id: str) -> pulumi.ResourceOptions:
    """Options for a resource that outlives the stack: retained on delete, adopted when asked."""
    return pulumi.ResourceOptions(retain_on_delete=True, import_=import_id if settings.adopt_kept else None)
