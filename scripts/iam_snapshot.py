"""Write scripts/program/iam_roles.json: what Google says the predefined roles we grant contain.

    .venv/bin/python -m scripts.iam_snapshot PATH   (a checkout, or a git directory, of
                                                     https://github.com/iann0036/iam-dataset)

iam-dataset keeps Google's role definitions (`gcp/roles/<role>.json`, as the IAM API's roles.get
answers them: https://cloud.google.com/iam/docs/roles-permissions) and its method-to-permission
map (`gcp/map.json`). The snapshot holds only what the program needs: the predefined roles it
grants in any of its settings (scripts/program/mocks.py VARIANTS), every permission Google lists for the
services our custom roles use (so that a misspelt or retired permission is caught), and the map's
rows for the methods we call (a cross-check of scripts/program/permission_map.py). It names its source, the
commit and the day it was taken. Run it again when a role's definition may have changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent / "program" / "iam_roles.json"
SOURCE = "https://github.com/iann0036/iam-dataset"


class Dataset:
    """Files of a checkout or of a bare git directory (read with git show)."""

    def __init__(self, path: Path):
        self.path = path
        self.bare = not (path / "gcp").is_dir()

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={self.path}", *args], check=True, capture_output=True, text=True
        ).stdout

    def read(self, name: str) -> str:
        return self.git("show", f"HEAD:{name}") if self.bare else (self.path / name).read_text()

    def names(self, folder: str) -> list[str]:
        if self.bare:
            return self.git("ls-tree", "--name-only", f"HEAD:{folder}").split()
        return sorted(p.name for p in (self.path / folder).iterdir())

    def commit(self) -> str:
        if self.bare:
            return self.git("rev-parse", "HEAD").strip()
        return subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()


def granted_roles() -> list[str]:
    """Every predefined role the program grants, in any of its settings."""
    from scripts.program.mocks import VARIANTS, dev_config, run_program

    roles = set()
    for overrides in VARIANTS.values():
        _, ledger = run_program(dev_config(**overrides))
        roles.update(g["role"] for g in ledger if g["role"].startswith("roles/"))
    return sorted(roles)


def snapshot(dataset: Dataset) -> dict:
    from infra import iam, permission_map

    roles = {}
    for role in granted_roles():
        definition = json.loads(dataset.read(f"gcp/roles/{role.removeprefix('roles/')}.json"))
        roles[role] = sorted(definition.get("includedPermissions", []))
    services = sorted({p.split(".")[0] for _, perms in iam.CUSTOM_ROLES.values() for p in perms})
    known = set()
    for name in dataset.names("gcp/roles"):
        definition = json.loads(dataset.read(f"gcp/roles/{name}"))
        known.update(p for p in definition.get("includedPermissions", []) if p.split(".")[0] in services)
    methods = json.loads(dataset.read("gcp/map.json"))["api"]
    rows = {}
    for name in permission_map.DATASET_NAMES:
        api = name.split(".")[0]
        found = methods.get(api, {}).get("methods", {}).get(name)
        if found is not None:
            rows[name] = sorted({p["name"] for p in found.get("permissions", [])})
    return {
        "source": SOURCE,
        "commit": dataset.commit(),
        "taken": datetime.now(UTC).date().isoformat(),
        "roles": roles,
        "services": services,
        "permissions": sorted(known),
        "methods": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.iam_snapshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", type=Path, help="a checkout or git directory of iam-dataset")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = snapshot(Dataset(args.dataset))
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(
        f"{args.out}: {len(data['roles'])} roles, {len(data['permissions'])} permissions, "
        f"commit {data['commit'][:12]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
