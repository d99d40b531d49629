"""Re-drive now: stranded inbound images and dead-lettered predictions, by hand.

    python -m scripts.sweep --job "$(pulumi stack output redrive_job)"
    python -m scripts.sweep                    # the running `make demo`
    python -m scripts.sweep --release gs://acme-qi-inbound/line-1/part.jpg#1712 \
        --prediction-bucket acme-qi-prediction  # a held move may go on (a name was freed)

In the cloud it asks Cloud Scheduler to run the re-drive job at once
(https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/run), the very
call Scheduler makes every `redriveEveryMinutes`: the sweep admits only internal traffic, and
Scheduler in the same project is internal. Your account needs `cloudscheduler.jobs.run` (project
Owners and `roles/cloudscheduler.jobRunner` have it). The sweep logs what it found as its `sweep`
line. Locally it calls the demo's sweep and prints the report. Safe to repeat: every move carries
out the one decision recorded for its image.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import requests

from scripts.local.state import DEFAULT_STATE, running_stack

SCHEDULER_API = "https://cloudscheduler.googleapis.com"
JOB = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[^/]+$")


def run_job(job: str, session=None, api: str = SCHEDULER_API) -> dict:
    """Ask Cloud Scheduler to run `job` now; returns the job as Scheduler answers it."""
    if not JOB.match(job):
        raise SystemExit(f"--job {job!r} is not projects/<project>/locations/<region>/jobs/<name>")
    if session is None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        session = AuthorizedSession(credentials)
    response = session.post(f"{api}/v1/{job}:run", json={}, timeout=60)
    if response.status_code != 200:
        raise SystemExit(f"Cloud Scheduler answered {response.status_code}: {response.text[:500]}")
    return response.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--job", help="the re-drive job (pulumi stack output redrive_job)")
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help="the demo's folder (default .demo/)"
    )
    parser.add_argument(
        "--release",
        metavar="GS_URI",
        help="gs://inbound/name#generation of a move held because every name for its copy was taken: "
        "free one of the names first (the dead letter lists them); the next sweep moves it",
    )
    parser.add_argument("--prediction-bucket", help="with --release: the stack's prediction bucket")
    args = parser.parse_args(argv)
    if args.release:
        from inspection import claims, storage

        if not args.prediction_bucket:
            raise SystemExit("--release needs --prediction-bucket (pulumi stack output buckets)")
        released = claims.release(args.prediction_bucket, storage.ObjectRef.parse(args.release))
        if released is None:
            print(f"{args.release} is not held: nothing to release")
            return 1
        print(f"released {args.release}: the next sweep moves it to {released.destination}")
        return 0
    if args.job:
        answered = run_job(args.job)
        print(
            f"Cloud Scheduler is running {answered.get('name', args.job)} now. What the sweep found is its "
            f"`sweep` log line: gcloud logging read 'jsonPayload.message=\"sweep\"' --limit 1 --freshness 10m"
        )
        return 0
    stack = running_stack(args.state)
    if stack is None or "sweep" not in stack:
        raise SystemExit("no running demo found: pass --job, or start `make demo` in another terminal")
    response = requests.post(stack["sweep"], timeout=600)
    if response.status_code != 200:
        raise SystemExit(f"the sweep answered {response.status_code}: {response.text[:500]}")
    report = response.json()
    print(json.dumps(report, indent=2))
    print(
        f"re-drove {report['redriven']} of {report['stranded']} stranded image(s), "
        f"published {report['replayed']} dead-lettered prediction(s) again; "
        f"{report['held_for_people']} unreadable message(s) stay held for a person"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
