"""The Google Cloud rules this program relies on: each with its public source and the test that
fails when the program breaks it. docs/gcp-rules.md is generated from this list
(`make docs`), and tests/test_gcp_rules.py checks that every named test exists, that every
source is a public address, and that every address the program's code cites is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    section: str
    rule: str  # what Google Cloud (or the provider) does
    design: str  # what the program does about it
    sources: tuple[str, ...]
    tests: tuple[str, ...]  # path::name


FD, ST, INF = "tests/test_first_deploy.py", "tests/test_stacks.py", "tests/test_infra.py"
PT = "tests/test_permissions.py"
TR, ED, BF = "tests/test_training.py", "tests/test_edge.py", "tests/test_backfill.py"

RULES: tuple[Rule, ...] = (
    # --- function builds ---------------------------------------------------------------------------
    Rule(
        "Function builds",
        "Gen2 builds fetch the function's source from the Google-managed bucket "
        "`gcf-v2-sources-<project number>-<region>`, not from the bucket the program uploaded to; a "
        'custom build account without read there fails with "Access to bucket gcf-v2-sources-… denied".',
        "`roles/storage.objectViewer` on the project, with an IAM condition that admits only that bucket "
        "(it is Google's, so no bucket-level grant can exist before it does).",
        (
            "https://github.com/hashicorp/terraform-provider-google/issues/20571",
            "https://github.com/GoogleCloudPlatform/marketing-analytics-jumpstart/issues/153",
        ),
        (
            f"{FD}::test_function_builds_can_read_the_bucket_cloud_functions_copies_their_source_to",
            "tests/test_iam_conditions.py::test_each_condition_admits_what_the_work_needs_and_refuses_the_rest",
        ),
    ),
    Rule(
        "Function builds",
        "A custom build account needs to write logs and push images; without `docker_repository` the "
        "images go to `gcf-artifacts`, which Cloud Functions creates itself.",
        "The stack declares its own repository; the builder writes only there.",
        (
            "https://cloud.google.com/functions/docs/securing/build-custom-sa",
            "https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#BuildConfig",
        ),
        (f"{FD}::test_function_images_go_to_a_declared_repository_and_the_builder_writes_only_there",),
    ),
    # --- waiting ---------------------------------------------------------------------------------------
    Rule(
        "Waiting",
        "New grants and service agents take time to take effect; Eventarc triggers, push "
        "subscriptions, schedules and App Engine builds created seconds after their grants fail on "
        "the first apply in a fresh project.",
        "A declared wait (`iamPropagationWait`, 90 s) sits between each resource and the grants it needs.",
        (
            "https://github.com/hashicorp/terraform-provider-google/issues/25294",
            "https://github.com/hashicorp/terraform-provider-google/issues/14584",
            "https://github.com/pulumi/pulumi-gcp/issues/1290",
            "https://github.com/terraform-google-modules/terraform-docs-samples/pull/179",
        ),
        (
            f"{FD}::test_functions_and_their_triggers_wait_for_iam_propagation",
            f"{FD}::test_the_push_subscription_waits_for_its_grants_to_propagate",
            f"{FD}::test_the_schedule_waits_for_its_callers_grant_to_propagate",
            f"{FD}::test_the_build_account_can_build_each_version_which_waits_for_it_and_runtime_accounts_cannot",
        ),
    ),
    Rule(
        "Waiting",
        "A `time.Sleep` waits only when it is created; `triggers` make it wait again when they change.",
        "Each wait names the grants (or metrics) it waits for in `triggers`, so a grant added later "
        "replaces the wait and what needs the grant waits again.",
        ("https://www.pulumi.com/registry/packages/time/api-docs/sleep/",),
        (f"{FD}::test_a_grant_added_later_makes_what_needs_it_wait_again",),
    ),
    Rule(
        "Waiting",
        'Monitoring answers 404 "Cannot find metric(s)" on an alert policy that names a log-based '
        "metric for up to about 10 minutes after the metric is made; the provider retries only "
        "concurrent-edit errors.",
        "Alert policies and the dashboard wait `metricPropagationWait` (600 s) after the metrics, once, "
        "and again only when the set of metrics changes.",
        (
            "https://github.com/hashicorp/terraform-provider-google/issues/11102",
            "https://github.com/GoogleCloudPlatform/cloud-foundation-fabric/pull/3739",
        ),
        (f"{FD}::test_alert_policies_and_the_dashboard_wait_for_the_metrics_they_name",),
    ),
    Rule(
        "Waiting",
        "A resource created before its API is enabled fails (`SERVICE_DISABLED`); a component's "
        "`depends_on` does not reach its children in Pulumi's Python SDK.",
        "Every resource, grant and lookup names the APIs it calls itself.",
        (
            "https://cloud.google.com/service-usage/docs/enable-disable",
            "https://www.pulumi.com/docs/iac/concepts/options/dependson/",
        ),
        (
            f"{FD}::test_every_resource_waits_for_the_api_it_is_created_through",
            f"{FD}::test_lookups_wait_for_the_apis_they_call",
        ),
    ),
    # --- the permission trace ----------------------------------------------------------------------------
    Rule(
        "Permissions",
        "Each request needs the permissions Google's per-method tables name: Cloud Storage's JSON methods "
        "(replacing a live object needs delete as well as create; a rewrite reads its source and creates "
        "its destination; a listing is checked on the bucket), Pub/Sub's publish and consume, Vertex AI's "
        "`aiplatform.endpoints.predict`, IAM's signBlob on the signing account.",
        "scripts/program/permission_map.py holds these tables; every traced call of every deployable is checked "
        "against the program's grants, and every granted permission must be used or say why.",
        (
            "https://cloud.google.com/storage/docs/access-control/iam-json",
            "https://cloud.google.com/pubsub/docs/access-control",
            "https://cloud.google.com/vertex-ai/docs/general/access-control",
            "https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/signBlob",
        ),
        (
            f"{PT}::test_every_call_is_granted_and_every_granted_permission_is_used",
            f"{PT}::test_a_permission_taken_away_is_a_403_named_at_the_line_that_needs_it",
        ),
    ),
    Rule(
        "Permissions",
        "A public, dated dataset maps API methods to permissions and predefined roles to theirs "
        "(iann0036/iam-dataset, built from Google's published role definitions).",
        "scripts/program/iam_roles.json is a snapshot of the roles we grant and the methods we call "
        "(`python -m scripts.iam_snapshot`); our table must agree with its map where both name a method.",
        ("https://github.com/iann0036/iam-dataset", "https://cloud.google.com/iam/docs/roles-permissions"),
        (
            f"{PT}::test_the_table_agrees_with_iam_dataset_where_both_name_a_method",
            f"{PT}::test_custom_roles_name_permissions_that_exist",
        ),
    ),
    Rule(
        "Permissions",
        "A custom role made in a project can be granted in that project only.",
        "A model in one of the stack's buckets is read under a custom role with `storage.objects.get`; a "
        "model elsewhere under `roles/storage.objectViewer`, with the reason on the grant.",
        ("https://cloud.google.com/iam/docs/understanding-custom-roles",),
        (f"{PT}::test_every_call_is_granted_and_every_granted_permission_is_used",),
    ),
    # --- service agents --------------------------------------------------------------------------------
    Rule(
        "Service agents",
        "Google grants each service's agent its role on the project when the API is enabled or the "
        "agent is created; removing one breaks that service.",
        "The program declares none of them; docs/iam.md lists them, so an audit of the project's "
        "policy finds nothing unexplained.",
        ("https://cloud.google.com/iam/docs/service-agents",),
        (f"{INF}::test_iam_doc_is_current",),
    ),
    Rule(
        "Service agents",
        "The Cloud Storage agent publishes a storage trigger's events; the trigger's identity needs "
        "`roles/eventarc.eventReceiver`, which Eventarc accepts on the project only.",
        "Both grants are declared; the agent's binding is the same in every stack, so it is kept on destroy.",
        ("https://cloud.google.com/eventarc/standard/docs/roles-permissions",),
        (f"{FD}::test_functions_and_their_triggers_wait_for_iam_propagation",),
    ),
    Rule(
        "Service agents",
        "The Pub/Sub agent needs publisher on the dead-letter topic and subscriber on the source "
        "subscription; Token Creator on the push identity only in projects created before 2021-04-08.",
        "Both grants are declared; Token Creator only with `pubsubAgentTokenCreator: true`.",
        (
            "https://cloud.google.com/pubsub/docs/handling-failures",
            "https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions",
        ),
        (
            f"{FD}::test_the_push_subscription_waits_for_its_grants_to_propagate",
            f"{FD}::test_the_pubsub_agent_mints_push_tokens_only_where_the_project_needs_it",
        ),
    ),
    Rule(
        "Service agents",
        "The subscription Eventarc creates for a Pub/Sub trigger cannot have a dead-letter policy.",
        "Move is reached through the stack's own push subscription, audience its Cloud Run URI.",
        (
            "https://github.com/hashicorp/terraform-provider-google/issues/17697",
            "https://cloud.google.com/run/docs/triggering/pubsub-push",
        ),
        (f"{INF}::test_move_is_pushed_by_our_own_subscription_with_a_dead_letter_topic",),
    ),
    # --- App Engine -------------------------------------------------------------------------------------
    Rule(
        "App Engine",
        "A project has one App Engine application, which can never be deleted; creating it again is a 409.",
        "`appEngine: create` makes it and keeps it on destroy; every other stack, and this one after a "
        "destroy, says `existing` and looks it up.",
        ("https://www.pulumi.com/registry/packages/gcp/api-docs/appengine/application/",),
        (f"{ST}::test_destroy_then_up_adopts_what_outlived_the_stack",),
    ),
    Rule(
        "App Engine",
        "The `default` service must exist before any other, and cannot be deleted.",
        "The stack that creates the application deploys a `default` service that serves nothing, kept on destroy.",
        ("https://cloud.google.com/appengine/docs/standard/reference/app-yaml#service",),
        (f"{ST}::test_destroying_either_stack_leaves_the_other_fully_working",),
    ),
    Rule(
        "App Engine",
        "A new version gets no traffic unless it is its service's first, and the provider does not move it.",
        "`EngineSplitTraffic` names the one version; it matters once, when a stack of an earlier release "
        "(content-named version ids) is replaced by the fixed id.",
        ("https://github.com/pulumi/pulumi-gcp/issues/718",),
        (f"{FD}::test_each_app_engine_version_gets_all_traffic_and_old_ones_are_removed",),
    ),
    Rule(
        "App Engine",
        "A version holding all traffic cannot be deleted and the split's delete does nothing, so "
        "`destroy` stopped there; with `delete_service_on_destroy` deleting a version deletes its whole "
        "service. The provider updates a version by posting it again under the same id; only a new id "
        "replaces it.",
        "Each stack service has one version under the fixed id `live`, updated in place, with "
        "`delete_service_on_destroy`: the service goes on destroy, and only then. No dynamic provider "
        "(Pulumi starts one from the `main` folder, where `infra` cannot be imported).",
        (
            "https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/templates/terraform/custom_delete/appversion_delete.go.tmpl",
            "https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/products/appengine/StandardAppVersion.yaml",
            "https://github.com/pulumi/pulumi/issues/7453",
        ),
        (
            f"{ST}::test_without_deleting_the_service_destroy_stops_at_the_version_holding_all_traffic",
            f"{ST}::test_the_program_starts_no_provider_process_of_its_own",
            f"{FD}::test_each_app_engine_version_gets_all_traffic_and_old_ones_are_removed",
        ),
    ),
    Rule(
        "App Engine",
        "Every version update re-posts the version's source zip.",
        "No age rule on the sources bucket; Pulumi deletes a zip itself once nothing uses it.",
        (
            "https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.services.versions/create",
            "https://www.pulumi.com/registry/packages/gcp/api-docs/appengine/standardappversion/",
        ),
        (f"{INF}::test_prediction_bucket_keeps_versions_and_the_live_sources_stay",),
    ),
    Rule(
        "App Engine",
        "The account an App Engine build runs as is 'either the App Engine default service account or "
        "your custom service account'. The provider's own example deploys versions whose account holds "
        "object read alone (it fetches the zip), and its tests saw the default account refused on the "
        "staging bucket while creating a version.",
        "The application's default account builds (the zip, the staging bucket, logs, gae-standard); "
        "each version's own account reads its zip and holds no build right. Neither is the Compute "
        "Engine default account, which needs the Compute API.",
        (
            "https://cloud.google.com/appengine/migration-center/migrate-to-artifact-registry",
            "https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/templates/terraform/samples/services/appengine/app_engine_standard_app_version.tf.tmpl",
            "https://github.com/GoogleCloudPlatform/magic-modules/pull/11326",
            "https://github.com/GoogleCloudPlatform/magic-modules/pull/13815",
            "https://github.com/hashicorp/terraform-provider-google/issues/18936",
            "https://cloud.google.com/build/docs/cloud-build-service-account-updates",
        ),
        (
            f"{FD}::test_the_build_account_can_build_each_version_which_waits_for_it_and_runtime_accounts_cannot",
            f"{FD}::test_no_grant_or_api_depends_on_the_compute_engine_default_account",
        ),
    ),
    Rule(
        "App Engine",
        "App Engine builds push to the `gae-standard` repository in the application's region; App "
        "Engine's location ids `europe-west` and `us-central` are `europe-west1` and `us-central1` elsewhere.",
        "The stack that creates the application declares `gae-standard` there and grants the build "
        "account writer on it, not the project-wide `createOnPushWriter`; a stack that finds the "
        "application there names no repository, which App Engine makes at its first deploy.",
        (
            "https://cloud.google.com/appengine/migration-center/migrate-to-artifact-registry",
            "https://cloud.google.com/appengine/docs/standard/locations",
        ),
        (
            f"{INF}::test_the_program_breaks_no_policy_rule",
            f"{ST}::test_every_grant_on_what_stacks_share_is_declared_by_one_stack_alone",
        ),
    ),
    Rule(
        "App Engine",
        "`gcp.iap.Brand` and `gcp.iap.Client` are gone (the IAP OAuth Admin API shut down on 2026-03-19); "
        "OAuth consent 'Internal' needs an organization.",
        "The OAuth client is made once in the console and passed as config.",
        (
            "https://cloud.google.com/iap/docs/deprecations",
            "https://support.google.com/cloud/answer/15549945",
        ),
        (f"{INF}::test_review_app_runs_behind_iap_with_its_own_account",),
    ),
    Rule(
        "App Engine",
        "IAP access can be granted per App Engine service; a request IAP admits carries a signed "
        "assertion whose audience is `/projects/<number>/apps/<project id>`.",
        "Reviewers and auditors are bound to their own service only; the app verifies the assertion.",
        (
            "https://cloud.google.com/iap/docs/managing-access",
            "https://cloud.google.com/iap/docs/signed-headers-howto",
        ),
        (
            f"{ST}::test_each_stacks_people_reach_only_that_stacks_review_app",
            "tests/test_workbench.py::test_each_role_combination_in_the_deployed_configuration",
            "tests/test_review_app.py::test_requests_without_a_valid_assertion_get_401",
        ),
    ),
    # --- one project, several stacks ----------------------------------------------------------------
    Rule(
        "One project, several stacks",
        "Deleting an additive IAM member removes the binding, also for whoever else declared it.",
        "Project-level bindings of principals the stack does not own (service agents, App Engine's "
        "default account, people) are kept on destroy; nothing else is declared by two stacks.",
        ("https://github.com/hashicorp/terraform-provider-google/issues/13648",),
        (
            f"{ST}::test_dev_and_prod_deploy_side_by_side_and_share_only_what_destroy_cannot_take",
            f"{ST}::test_destroying_either_stack_leaves_the_other_fully_working",
        ),
    ),
    Rule(
        "One project, several stacks",
        "Deleting a `ServiceIdentity` does nothing; an API `Service` with `disable_on_destroy: false` "
        "stays enabled.",
        "Every stack declares the APIs and agents it needs; a destroy leaves them for the others.",
        (
            "https://www.pulumi.com/registry/packages/gcp/api-docs/projects/serviceidentity/",
            "https://www.pulumi.com/registry/packages/gcp/api-docs/projects/service/",
        ),
        (f"{ST}::test_dev_and_prod_deploy_side_by_side_and_share_only_what_destroy_cannot_take",),
    ),
    Rule(
        "One project, several stacks",
        "A deleted custom role can be undeleted for 7 days and keeps its id until day 37; creating a "
        "role whose id exists is refused. Pulumi's `import` option adopts an existing resource, and "
        "is a no-op once the resource is in the stack.",
        "Custom roles are retained on destroy, so no id is ever stuck; the next `up` of the prefix "
        "adopts them with `adoptKept: true` (infra/kept.py).",
        (
            "https://cloud.google.com/iam/docs/reference/rest/v1/projects.roles/delete",
            "https://www.pulumi.com/registry/packages/gcp/api-docs/projects/iamcustomrole/",
            "https://www.pulumi.com/docs/iac/concepts/resources/options/import/",
            "https://github.com/pulumi/pulumi/blob/master/developer-docs/architecture/import.md",
        ),
        (
            f"{ST}::test_a_custom_role_is_never_deleted_so_its_id_is_never_stuck_between_day_7_and_37",
            f"{ST}::test_destroy_then_up_adopts_what_outlived_the_stack",
        ),
    ),
    Rule(
        "One project, several stacks",
        "A bucket that holds objects is not deleted unless `force_destroy`; a dataset that holds tables "
        "is not deleted unless `delete_contents_on_destroy`.",
        "Photos, decisions, training data and records are never deleted by a tool: destroy leaves their "
        "buckets and dataset in the project (retained), and the next `up` adopts them. Only the sources "
        "bucket, rebuilt from the repository, is force-destroyed.",
        (
            "https://www.pulumi.com/registry/packages/gcp/api-docs/storage/bucket/",
            "https://www.pulumi.com/registry/packages/gcp/api-docs/bigquery/dataset/",
            "https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/",
        ),
        (
            f"{INF}::test_prediction_bucket_keeps_versions_and_the_live_sources_stay",
            f"{ST}::test_destroy_then_up_adopts_what_outlived_the_stack",
        ),
    ),
    # --- least privilege ----------------------------------------------------------------------------------
    Rule(
        "Least privilege",
        "`roles/aiplatform.user` also changes, undeploys and deletes endpoints; prediction needs only "
        "`aiplatform.endpoints.predict`. `roles/iam.serviceAccountTokenCreator` also mints tokens; signing "
        "URLs needs only `iam.serviceAccounts.signBlob`. `roles/storage.objectUser` also updates metadata "
        "and restores objects.",
        "A custom role names exactly the permissions each kind of work uses.",
        (
            "https://cloud.google.com/vertex-ai/docs/general/access-control",
            "https://cloud.google.com/iam/docs/service-account-permissions#token-creator-role",
            "https://cloud.google.com/iam/docs/roles-permissions/storage",
        ),
        (
            f"{FD}::test_no_predefined_role_is_broader_than_the_work",
            f"{FD}::test_a_vertex_grant_allows_prediction_only",
        ),
    ),
    Rule(
        "Least privilege",
        "Overwriting an object needs `storage.objects.delete` as well as create.",
        "Moves overwrite only their own claims: the delete grant carries a condition admitting `claims/` only.",
        ("https://cloud.google.com/storage/docs/access-control/iam-json",),
        (
            "tests/test_iam_conditions.py::test_each_condition_admits_what_the_work_needs_and_refuses_the_rest",
        ),
    ),
    Rule(
        "Least privilege",
        "IAM conditions are CEL; Cloud Storage names its resources `projects/_/buckets/<bucket>/objects/<name>`.",
        "Every condition is parsed and evaluated by a real CEL implementation against names it must "
        "admit and refuse.",
        (
            "https://cloud.google.com/iam/docs/conditions-overview",
            "https://cloud.google.com/iam/docs/conditions-attribute-reference",
            "https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name",
        ),
        (
            "tests/test_iam_conditions.py::test_each_condition_is_valid_cel_that_iam_accepts",
            "tests/test_iam_conditions.py::test_each_condition_admits_what_the_work_needs_and_refuses_the_rest",
        ),
    ),
    Rule(
        "Least privilege",
        "Cloud Scheduler in the same project counts as internal traffic for Cloud Run ingress.",
        "Every function, the sweep included, admits internal traffic only; a sweep on demand runs the job.",
        (
            "https://cloud.google.com/run/docs/securing/ingress",
            "https://cloud.google.com/scheduler/docs/http-target-auth",
            "https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/run",
        ),
        (
            f"{FD}::test_the_sweep_admits_only_internal_traffic",
            "tests/test_operations.py::test_a_sweep_now_runs_the_scheduler_job_rather_than_calling_the_function",
        ),
    ),
    Rule(
        "Least privilege",
        "Default service accounts receive the Editor role automatically unless the organization "
        "policy `iam.automaticIamGrantsForDefaultServiceAccounts` is enforced.",
        "Nothing runs as a default account; App Engine's default account only builds, with exactly "
        "the build's grants. docs/deploy.md tells the platform team to enforce the policy.",
        ("https://cloud.google.com/resource-manager/docs/organization-policy/restricting-service-accounts",),
        (f"{INF}::test_functions_use_their_own_accounts_and_never_a_default_one",),
    ),
    # --- monitoring ------------------------------------------------------------------------------------------
    Rule(
        "Monitoring",
        "Alert policies and dashboards take PromQL; a log-based metric `logging.googleapis.com/user/<m>` "
        "is `logging_googleapis_com:user_<m>` there; PromQL's regular expressions are RE2.",
        "Every query passes `promtool check rules`; the p-chart alerts pass `promtool test rules` over "
        "series with those names; a line name is escaped before it enters a regular expression.",
        (
            "https://github.com/google/re2/wiki/Syntax",
            "https://cloud.google.com/monitoring/promql/promql-in-alerting",
            "https://cloud.google.com/monitoring/promql/promql-mapping",
            "https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards",
        ),
        (
            "tests/test_promql.py::test_every_declared_query_parses_as_promql",
            "tests/test_promql.py::test_the_p_chart_alert_fires_above_the_limit_and_stays_quiet_below_it_or_without_images",
        ),
    ),
    Rule(
        "Monitoring",
        "Log-based metrics select lines with the Logging query language and keep labels by extractors.",
        "Each metric's filter is evaluated against the lines the real handlers write.",
        (
            "https://cloud.google.com/logging/docs/logs-based-metrics",
            "https://cloud.google.com/logging/docs/view/logging-query-language",
        ),
        ("tests/test_operations.py::test_every_declared_metric_reads_real_log_lines_and_finds_its_fields",),
    ),
    # --- records --------------------------------------------------------------------------------------------
    Rule(
        "Records",
        "A Logging sink to BigQuery writes as its writer identity, which needs `roles/bigquery.dataEditor` "
        "on the dataset; with partitioned tables, tables are partitioned by the entry's timestamp; entries "
        "arrive within seconds to minutes.",
        "The sink takes exactly this stack's record lines; its writer may write to this dataset only.",
        (
            "https://cloud.google.com/logging/docs/export/bigquery",
            "https://cloud.google.com/logging/docs/export/configure_export_v2",
        ),
        (
            "tests/test_operations.py::test_the_records_sink_takes_exactly_the_record_lines_of_this_stack",
            f"{FD}::test_nothing_writes_a_record_line_before_the_sink_may_deliver_it",
        ),
    ),
    Rule(
        "Records",
        "Running a query needs `bigquery.jobs.create` on the project (no narrower resource takes it); "
        "the tables it reads need `bigquery.tables.getData`, listing them `bigquery.tables.list`.",
        "Readers get `dataViewer` on the dataset, and this stack's custom role with `bigquery.jobs.create` "
        "on the project: the binding is the stack's own, so leaving `reportReaders` revokes it.",
        (
            "https://cloud.google.com/bigquery/docs/access-control#bigquery.jobUser",
            "https://cloud.google.com/bigquery/docs/access-control",
        ),
        (
            "tests/test_records.py::test_every_query_is_valid_bigquery_sql_over_the_sinks_tables",
            f"{PT}::test_every_call_is_granted_and_every_granted_permission_is_used",
        ),
    ),
    # --- Cloud Storage ------------------------------------------------------------------------------------------
    Rule(
        "Cloud Storage",
        "Object names are at most 1,024 bytes of UTF-8, without CR or LF, and not `.` or `..`.",
        "The local emulator's proxy enforces the same rules, and names that would break a lease, an index "
        "or a display are quarantined at predict.",
        ("https://cloud.google.com/storage/docs/objects#naming",),
        (
            "tests/test_gcs_proxy.py::test_a_name_gcs_refuses_is_refused_on_upload_and_as_a_copy",
            "tests/test_gcs_proxy.py::test_a_name_of_exactly_1024_bytes_is_stored",
        ),
    ),
    Rule(
        "Cloud Storage",
        "Without a key file, `generate_signed_url(service_account_email=…, access_token=…)` signs through "
        "IAM `signBlob`; call `credentials.refresh()` first, or the email is the literal 'default'.",
        "Each service that shows photos (review, audit) signs as itself with "
        "`iam.serviceAccounts.signBlob` on itself only.",
        ("https://cloud.google.com/storage/docs/access-control/signing-urls-with-helpers",),
        ("tests/test_review_app.py::test_images_are_served_through_short_lived_v4_signed_urls",),
    ),
    Rule(
        "Cloud Storage",
        "A signed URL acts with the permissions of the account that signed it: that account must be "
        "able to make the request the URL makes. A V4 URL names it in `X-Goog-Credential` "
        "(`<account>/<date>/<location>/storage/goog4_request`).",
        "The audit service, which shows decided photos and their anomaly maps, holds read on "
        "`human_decided/` and `heatmaps/` alone, and signs as itself. Locally each service signs as an "
        "account of its own name, and the permission trace charges each signed read to the account the "
        "URL names.",
        (
            "https://cloud.google.com/storage/docs/access-control/signed-urls",
            "https://cloud.google.com/storage/docs/authentication/signatures",
        ),
        (
            f"{PT}::test_the_trace_goes_through_every_deployable_and_its_paths",
            f"{PT}::test_every_call_is_granted_and_every_granted_permission_is_used",
        ),
    ),
    # --- Vertex AI -------------------------------------------------------------------------------------------
    Rule(
        "Model formats",
        "An anomalib ONNX export takes `input` (N × 3 × H × W, RGB in [0, 1]) and answers `pred_score`, "
        "`pred_label`, `anomaly_map` and `pred_mask`, with its pre- and post-processing in the graph "
        "(scores normalised so that 0.5 is the threshold). Not Google's: the format a workstation "
        "model arrives in. Its pre-processing may end in an optional centre crop (PatchCore's and "
        "CFA's `center_crop_size`, exported as ExportableCenterCrop): the map then covers only the "
        "centre of the resized input.",
        "The `anomaly` backend runs such a file unchanged, and refuses one without those names; a map "
        "smaller than the input is placed over the centre of the photo, not stretched over it.",
        (
            "https://github.com/open-edge-platform/anomalib/blob/main/src/anomalib/models/components/base/export_mixin.py",
            "https://github.com/open-edge-platform/anomalib/blob/main/src/anomalib/data/dataclasses/torch/base.py",
            "https://github.com/open-edge-platform/anomalib/pull/2623",
            "https://github.com/open-edge-platform/anomalib/pull/2203",
        ),
        (
            "tests/test_anomaly.py::test_an_anomalib_onnx_export_runs_unchanged",
            "tests/test_anomaly.py::test_an_onnx_file_without_anomalibs_outputs_is_refused_with_what_it_has",
            "tests/test_anomaly.py::test_a_centre_cropped_anomalib_exports_map_lies_over_the_centre_of_the_photo",
        ),
    ),
    Rule(
        "Vertex AI",
        "Online prediction: `POST https://{region}-aiplatform.googleapis.com/v1/{endpoint}:predict` with base64 "
        "`content`; requests are limited to 1.5 MB. A deployed model is billed every hour.",
        "The vertex backend calls the regional URL and shrinks an image to fit.",
        (
            "https://cloud.google.com/vertex-ai/docs/image-data/classification/get-predictions",
            "https://cloud.google.com/vertex-ai/pricing",
        ),
        ("tests/test_training.py::test_train_sends_the_dataset_import_budget_and_deploy_requests",),
    ),
    Rule(
        "Vertex AI",
        "AutoML image classification budgets (`budgetMilliNodeHours`): `CLOUD` 8,000–800,000; the "
        "`MOBILE_TF_*` model types 1,000–100,000; a budget outside the range is refused.",
        "`train_vertex` refuses it first.",
        (
            "https://cloud.google.com/vertex-ai/docs/reference/rest/v1/schema/trainingjob.definition/AutoMlImageClassificationInputs",
        ),
        ("tests/test_training.py::test_a_budget_the_api_would_refuse_stops_before_anything_is_created",),
    ),
    Rule(
        "Vertex AI",
        "Edge models cannot be served by Vertex; `models.export` with `exportFormatId: tflite` writes to a "
        "folder named by the operation's `outputInfo.artifactOutputUri`.",
        "`train_vertex --edge` reads the folder from the operation and checks the export before anything serves it.",
        (
            "https://cloud.google.com/vertex-ai/docs/export/export-edge-model",
            "https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.models/export",
        ),
        (
            "tests/test_training.py::test_edge_training_exports_evaluates_with_predicts_code_and_writes_the_card",
        ),
    ),
    Rule(
        "Vertex AI",
        "A TF Lite export is one `model.tflite`: no `dict.txt` beside it, as AutoML Vision wrote; the "
        "labels and the input normalisation are inside, as TF Lite metadata (a FlatBuffer in the model's "
        "metadata, with the label file in a zip appended to the model).",
        "predict reads the labels and normalisation from the file itself (inspection/model/tflite_metadata.py, "
        "checked against tflite-support's own reader); a legacy `dict.txt` only when the file has no "
        "labels; a float model with no normalisation, and an export with no labels, are refused. The "
        "committed fixtures are written in that layout by tflite-support's own writer.",
        (
            "https://cloud.google.com/vertex-ai/docs/export/export-edge-model",
            "https://github.com/tensorflow/tflite-support/issues/777",
            "https://github.com/tensorflow/tflite-support/blob/master/tensorflow_lite_support/metadata/metadata_schema.fbs",
            "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/compiler/mlir/lite/schema/schema.fbs",
        ),
        (
            f"{ED}::test_the_labels_come_from_inside_the_model_and_match_googles_own_reader",
            f"{ED}::test_a_legacy_export_reads_its_label_file_and_a_bare_model_is_refused",
            f"{ED}::test_a_float_model_whose_normalisation_is_unknown_is_refused",
            f"{TR}::test_an_export_without_labels_stops_before_anything_is_served",
        ),
    ),
    Rule(
        "Vertex AI",
        "Google's own Edge sample prepares an image for the exported model with TensorFlow's default "
        "`tf.image.resize` (bilinear, half-pixel centres, no antialiasing) to the input size, then "
        "`tf.cast` to uint8, with no crop.",
        "predict prepares it the same way (8-bit RGB, alpha flattened on white, 16-bit scaled, then "
        "`images.resize_bilinear`), checked pixel for pixel against TensorFlow's output; `train_vertex` "
        "stops when its evaluation of the export disagrees with Vertex's beyond sampling noise.",
        (
            "https://github.com/GoogleCloudPlatform/vertex-ai-samples/blob/main/notebooks/community/gapic/automl/showcase_automl_image_classification_export_edge.ipynb",
        ),
        (
            f"{ED}::test_the_edge_preprocessing_is_tensorflows_resize_to_the_pixel",
            f"{ED}::test_wide_and_transparent_images_reach_the_model_as_they_look",
            f"{TR}::test_an_export_that_disagrees_with_vertexs_evaluation_is_not_served",
        ),
    ),
    Rule(
        "Vertex AI",
        "An import file's split values are `training`, `validation` and `test`, and image training "
        "takes JPEG, PNG, GIF, BMP and ICO; Vertex drops at import what it cannot take.",
        "`prepare` writes those values and keeps only those formats, one copy of each image; "
        "`train_vertex` reports what Vertex dropped.",
        ("https://cloud.google.com/vertex-ai/docs/image-data/classification/prepare-data",),
        (
            f"{TR}::test_the_import_file_uses_vertexs_split_values_and_still_reads_the_legacy_ones",
            f"{TR}::test_prepare_keeps_one_copy_of_an_image_and_only_formats_vertex_trains_on",
        ),
    ),
    Rule(
        "Vertex AI",
        "`undeployModel` refuses to remove a model that still holds traffic while other models stay "
        "deployed: the request must give the remaining models the traffic (`trafficSplit`).",
        "`train_vertex --undeploy` hands the traffic to the models that stay.",
        (
            "https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/undeployModel",
        ),
        (f"{TR}::test_undeploy_stops_the_endpoint_cost",),
    ),
    Rule(
        "Vertex AI",
        "Batch prediction for an AutoML image model runs on the Model, with no endpoint: JSONL in "
        '(`{"content": "gs://…", "mimeType": "image/jpeg"}`), and `predictions*.jsonl` out, each line '
        "the instance with `ids`, `displayNames` and `confidences`; billed per node hour.",
        "`scripts.backfill` with a Model name runs one batch prediction job and routes its answers by "
        "predict's rule.",
        (
            "https://cloud.google.com/vertex-ai/docs/image-data/classification/get-predictions#batch",
            "https://github.com/GoogleCloudPlatform/vertex-ai-samples/blob/main/notebooks/official/migration/UJ1%20Vertex%20SDK%20AutoML%20Image%20Classification.ipynb",
            "https://cloud.google.com/vertex-ai/pricing",
        ),
        (f"{BF}::test_a_vertex_model_backfills_through_a_batch_prediction_job_on_the_model",),
    ),
    Rule(
        "Cloud Run",
        "Each task of a Cloud Run job is told its index and the job's task count in "
        "`CLOUD_RUN_TASK_INDEX` and `CLOUD_RUN_TASK_COUNT`.",
        "A backfill run as a job's tasks takes its shard from them, so the tasks share an archive "
        "without talking to each other.",
        ("https://cloud.google.com/run/docs/container-contract#jobs-env-vars",),
        (f"{BF}::test_shards_share_an_archive_and_a_shard_killed_half_way_is_finished_by_the_next_run",),
    ),
    # --- the local world: emulators taught the real service's rules ------------------------------------------
    Rule(
        "Cloud Storage",
        "A composite object has no MD5 hash, only a CRC32C and a component count.",
        "Training data is keyed by content from whichever the object has; the local proxy strips the "
        "MD5 from composite objects as GCS does.",
        ("https://cloud.google.com/storage/docs/composite-objects",),
        (f"{TR}::test_reviewed_images_grow_the_test_split_and_composite_objects_are_taken",),
    ),
    Rule(
        "Cloud Storage",
        "In a bucket with versioning, a replaced or deleted generation stays readable, copyable and "
        "deletable by its number, and listings with `versions` show it.",
        "The local proxy keeps the generations it saw and answers as GCS does; claims and the sweep "
        "name exact generations.",
        (
            "https://cloud.google.com/storage/docs/object-versioning",
            "https://cloud.google.com/storage/docs/naming-objects",
        ),
        (
            "tests/test_gcs_proxy.py::test_a_versioned_bucket_serves_and_copies_a_noncurrent_generation",
            "tests/test_gcs_proxy.py::test_deleting_a_noncurrent_generation_deletes_exactly_it",
        ),
    ),
    Rule(
        "Cloud Storage",
        "google-cloud-storage 3.x fetches each bucket's metadata (`storage.buckets.get`) in the "
        "background for trace attributes unless `DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA` is set.",
        "Every deployable sets it: nothing here is granted `storage.buckets.get`, and the requests a "
        "backfill makes per image are exactly the ones its estimate counts.",
        (
            "https://github.com/googleapis/python-storage/blob/main/google/cloud/storage/_opentelemetry_tracing.py",
        ),
        (f"{BF}::test_an_archive_is_routed_as_predict_routes_it_and_a_rerun_writes_nothing",),
    ),
    Rule(
        "Cloud Storage",
        "That switch stops the metadata cache's fetches, not its checks: once a bucket is in the cache "
        "(any `create_bucket` or `get_bucket` puts it there), every 404 sends a background "
        "`buckets.get`, denied to object-only roles; the library has no supported opt-out yet.",
        "Our clients drop the cache (`inspection/storage.py`): a decision, whose claim lookup is a 404, "
        "makes no `buckets.get`.",
        (
            "https://github.com/googleapis/google-cloud-python/issues/17650",
            "https://github.com/googleapis/google-cloud-python/pull/18203",
        ),
        ("tests/test_review_app.py::test_a_decision_asks_nothing_of_the_bucket_itself",),
    ),
    Rule(
        "Eventarc",
        "A storage event reaches the function as a CloudEvent in the HTTP binary mode: `ce-*` headers, "
        'whose values percent-encode characters outside printable ASCII, and `%` and `"`.',
        "The local event bridge sends them so; a malformed event is dead-lettered, never answered 500.",
        ("https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/http-protocol-binding.md",),
        ("tests/test_nothing_lost.py::test_malformed_cloudevents_are_dead_lettered_not_answered_with_500",),
    ),
    Rule(
        "App Engine",
        "Behind IAP, each request carries `x-goog-iap-jwt-assertion`, an ES256 JWT from issuer "
        "`https://cloud.google.com/iap` whose audience is `/projects/<number>/apps/<project id>`.",
        "The review app verifies signature, issuer and audience, and answers 401 otherwise.",
        ("https://cloud.google.com/iap/docs/signed-headers-howto",),
        (
            "tests/test_review_app.py::test_a_valid_iap_assertion_is_the_reviewer",
            "tests/test_review_app.py::test_requests_without_a_valid_assertion_get_401",
        ),
    ),
    # --- prices ----------------------------------------------------------------------------------------------
    Rule(
        "Prices",
        "Every price the docs and the scripts quote is a list price on Google's pricing pages, on "
        "the day it was read.",
        "scripts/costs.py keeps each with its page and that day; the cost tables in docs/deploy.md are generated "
        "from it and from counted requests.",
        (
            "https://cloud.google.com/storage/pricing",
            "https://cloud.google.com/storage/pricing#operations-by-class",
            "https://cloud.google.com/pubsub/pricing",
            "https://cloud.google.com/eventarc/pricing",
            "https://cloud.google.com/stackdriver/pricing",
            "https://cloud.google.com/bigquery/pricing",
            "https://cloud.google.com/run/pricing",
            "https://cloud.google.com/vertex-ai/pricing",
        ),
        (
            "tests/test_costs.py::test_every_price_names_its_page_and_the_day_it_was_read",
            "tests/test_costs.py::test_the_deploy_guide_shows_the_tables_the_cost_model_prints",
        ),
    ),
)


def render() -> str:
    lines = [
        "# The Google Cloud rules this program relies on",
        "",
        "Generated by `make docs` from `scripts/program/gcp_rules.py`; do not edit by hand. Each rule names its",
        "public source and the tests that fail when the program breaks it (a test checks that every",
        "named test exists and that every address the program's code cites is listed here).",
    ]
    section = None
    for rule in RULES:
        if rule.section != section:
            section = rule.section
            lines += ["", f"## {section}", ""]
        lines += [
            f"- **{rule.rule}**",
            f"  {rule.design}",
            "  Sources: " + ", ".join(f"<{s}>" for s in rule.sources) + ".",
            "  Tests: " + ", ".join(f"`{t}`" for t in rule.tests) + ".",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
