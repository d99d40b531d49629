"""`make bench`: every figure printed as a table and written to bench/results.json, one key each."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the table is the output; progress bars would bury it

from bench import anomaly, backends, imports, pipeline, records, review

RESULTS = Path(__file__).with_name("results.json")


def main() -> None:
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
        started = time.perf_counter()
        print(f"measuring {name} …", flush=True)
        figures.update(module.measure())
        print(f"  done in {time.perf_counter() - started:.0f}s", flush=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    width = max(map(len, figures))
    print()
    for key, value in figures.items():
        print(f"{key:{width}s}  {value}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
