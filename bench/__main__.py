"""`make bench`: every figure printed as a table and written to bench/results.json, one key each."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the table is the output; progress bars would bury it

from bench import anomaly, backends, imports, pipeline, records, review

RESULTS = Path(__file__).with_name("results.json")


# `--smoke` (CI, `make bench-smoke`): every measurement once, on a few images, to show that each
# still runs on a clean clone; its figures are not the bench's and are not written. The records'
# year (a 10-million-outcome store) is left out: its writer has a unit test (tests/test_records.py).
SMOKE = {
    "imports": {"runs": 1},
    "backends": {"images_count": 10, "runs": 1},
    "anomaly": {"runs": 1, "depth_photos": 4, "good_photos": 4},
    "review": {"sizes": (20, 60), "samples": 3, "painted": 3},
    "pipeline": {"sizes": (20,)},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="each measurement once, small; nothing written")
    args = parser.parse_args(argv)
    from inspection import logs

    logs.send_to(open(os.devnull, "w"))  # noqa: SIM115 - the handlers' decision logs are not figures
    figures: dict[str, float] = {}
    for name, module in (
        ("imports", imports),
        ("backends", backends),
        ("anomaly", anomaly),
        ("review", review),
        ("records", records),
        ("pipeline", pipeline),
    ):
        if args.smoke and name not in SMOKE:
            continue
        started = time.perf_counter()
        print(f"measuring {name} …", flush=True)
        figures.update(module.measure(**(SMOKE[name] if args.smoke else {})))
        print(f"  done in {time.perf_counter() - started:.0f}s", flush=True)
    if args.smoke:
        print(f"bench smoke: {len(figures)} figures measured, none written")
        return 0
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    width = max(map(len, figures))
    print()
    for key, value in figures.items():
        print(f"{key:{width}s}  {value}")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
