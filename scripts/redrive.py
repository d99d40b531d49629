"""Re-drive now: stranded inbound images and dead-lettered predictions, by hand.

    python -m scripts.redrive --url "$(pulumi stack output function_uris --json | jq -r .sweep)"
    python -m scripts.redrive                    # the running `make demo`

It calls the same sweep that Cloud Scheduler calls every `redriveEveryMinutes`, as you: your
account needs run.invoker on the sweep function (project Owners and Cloud Run admins have it).
Safe to repeat: every move carries out the one decision recorded for its image.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import requests

from scripts.local.state import DEFAULT_STATE, running_stack


def identity_token(audience: str) -> str:
    """An ID token for `audience`: from a service account's credentials, else from gcloud."""
    import google.auth.exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    try:
        return id_token.fetch_id_token(Request(), audience)
    except google.auth.exceptions.DefaultCredentialsError:
        pass
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise SystemExit("no credentials for an ID token: run `gcloud auth login`, or use a service account")
    return subprocess.run(
        [gcloud, "auth", "print-identity-token"], check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="the sweep function's URL (pulumi stack output function_uris)")
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help="the demo's folder (default .demo/)"
    )
    args = parser.parse_args(argv)
    if args.url:
        headers = {"Authorization": f"Bearer {identity_token(args.url)}"}
        url = args.url
    else:
        stack = running_stack(args.state)
        if stack is None or "sweep" not in stack:
            raise SystemExit("no running demo found: pass --url, or start `make demo` in another terminal")
        headers, url = {}, stack["sweep"]
    response = requests.post(url, headers=headers, timeout=600)
    if response.status_code != 200:
        raise SystemExit(f"the sweep answered {response.status_code}: {response.text[:500]}")
    report = response.json()
    print(json.dumps(report, indent=2))
    print(
        f"re-drove {report['redriven']} of {report['stranded']} stranded image(s), "
        f"published {report['replayed']} dead-lettered prediction(s) again; "
        f"{report['held_for_people']} unreadable message(s) stay held for a person"
    )


if __name__ == "__main__":
    main()
