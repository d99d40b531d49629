"""One handler call in a process of its own, for tests/faults.Child: the crash tests kill it at a
storage request. Its log lines (the records among them) go to stdout.

    python -m tests.crash_child move|predict|decide|undo '<json>'
"""

from __future__ import annotations

import json
import sys


def main(kind: str, payload: dict) -> int:
    if kind in ("move", "predict"):
        from cloudevents.conversion import to_binary
        from cloudevents.http import CloudEvent

        from tests.helpers import make_function

        if kind == "move":
            response = make_function("move_image", "http").post("/", json=payload)
        else:
            event = CloudEvent(
                {"type": "google.cloud.storage.object.v1.finalized", "source": "//storage.googleapis.com/x"},
                payload,
            )
            headers, data = to_binary(event)
            response = make_function("predict_image", "cloudevent").post("/", headers=headers, data=data)
        return 0 if response.status_code < 300 else 1
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue

    decisions = Decisions(Queue(payload["bucket"]))
    if kind == "decide":
        decisions.decide(payload["name"], payload["generation"], payload["label"], payload["reviewer"])
    else:
        decisions.undo(payload["name"], payload["generation"], payload["reviewer"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], json.loads(sys.argv[2])))
