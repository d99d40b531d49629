"""Upload more images (files or folders) into the inbound bucket of a running `make demo`.

    .venv/bin/python -m scripts.local.upload my_photo.jpg more_photos/

Every file is uploaded under its own name; watch it arrive in the review app if it is unclear.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scripts.local.state import DEFAULT_STATE, running_stack


def files(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, object name) for every file named or inside a folder named."""
    found = []
    for path in paths:
        if path.is_dir():
            found += [
                (f, f.relative_to(path.parent).as_posix()) for f in sorted(path.rglob("*")) if f.is_file()
            ]
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise SystemExit(f"{path}: no such file or folder")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    stack = running_stack(args.state)
    if stack is None:
        raise SystemExit("no running demo found: start `make demo` in another terminal first")
    os.environ["STORAGE_EMULATOR_HOST"] = stack["gcs"]
    from inspection import storage

    bucket = storage.client().bucket(stack["inbound"])
    items = files(args.paths)
    for path, name in items:
        bucket.blob(name).upload_from_filename(str(path))
        print(f"uploaded {path} as {name}")
    print(f"{len(items)} file(s) in the inbound bucket; the pipeline routes them within seconds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
