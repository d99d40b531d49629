"""The local stack end to end: real emulators, the real handlers under functions-framework."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from inspection import storage
from scripts.local.pubsub import find_emulator_jar
from scripts.local.stack import LocalStack, StackConfig
from tests.faults import hook
from tests.helpers import image_bytes, logged

BAD = {"bad/notes.txt": b"not an image", "bad/empty.jpg": b"", "bad/cut.jpg": image_bytes()[:1200]}


@pytest.fixture
def isolated_env():
    """The stack points this process at its own emulators; put everything back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    storage.client.cache_clear()


def wait_routed(stack: LocalStack, names: set[str], timeout: float = 90) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        routed = stack.routed()
        if names <= {n for found in routed.values() for n in found} and not stack.inbound_names():
            return routed
        time.sleep(0.2)
    raise AssertionError(f"not routed in time: {names - {n for f in stack.routed().values() for n in f}}")


def upload(stack: LocalStack, items: dict[str, bytes]) -> None:
    bucket = storage.client().bucket(stack.config.inbound_bucket)
    for name, data in items.items():
        bucket.blob(name).upload_from_string(data)


def exactly_once(routed: dict[str, list[str]], names: set[str]) -> None:
    everything = [n for found in routed.values() for n in found]
    assert sorted(everything) == sorted(names), "every upload in exactly one folder, nothing extra"


def test_demo_once_routes_every_image_and_exits_zero(tmp_path):
    """`make demo ONCE=1` on a small sample: exit 0, and the counts add up to every upload."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.local.demo",
            "--once",
            "--train",
            "60",
            "--test",
            "24",
            "--state",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    counts = {}
    for folder in ("ok", "defect", "unclear", "rejected"):
        line = next(x for x in out.splitlines() if x.strip().startswith(f"{folder}/"))
        counts[folder] = int(line.split()[-1])
    assert sum(counts.values()) == 24 + 2  # the test split plus the demo's two bad files
    assert counts["rejected"] == 2
    assert "routed 26 of 26 uploads" in out
    assert "Pub/Sub:" in out


@pytest.mark.parametrize("emulator", [True, False], ids=["pubsub-emulator", "in-process-queue"])
def test_a_mixed_batch_with_bad_files_loses_nothing(tmp_path, small_model, isolated_env, emulator):
    if emulator and find_emulator_jar() is None:
        pytest.skip("SKIPPED LOUDLY: Google's Pub/Sub emulator is not installed")
    good = {f"good/part-{i}.png": image_bytes("PNG", defect="crack" if i % 2 else None) for i in range(6)}
    with LocalStack(StackConfig(model_path=small_model, use_emulator=emulator)) as stack:
        upload(stack, {**good, **BAD})
        routed = wait_routed(stack, set(good) | set(BAD))
        assert sorted(routed["rejected"]) == sorted(BAD)
        exactly_once(routed, set(good) | set(BAD))
        assert stack.dead_letters() == []


def test_functions_in_processes_of_their_own_survive_a_killed_instance(small_model, isolated_env):
    """As Cloud Run runs them: predict, move and the sweep each in a process of their own. Move's
    process is killed (SIGKILL) right after its first copy took effect, before the source is
    deleted; it is started again, Pub/Sub redelivers, and every image still ends in exactly one
    place, with exactly one record in the store (written by the handlers' own processes)."""
    if find_emulator_jar() is None:
        pytest.skip("SKIPPED LOUDLY: Google's Pub/Sub emulator is not installed")
    images = {f"line/part-{i:03d}.jpg": image_bytes(defect="blowhole" if i % 3 else None) for i in range(12)}
    with LocalStack(StackConfig(model_path=small_model, handler_processes=True)) as stack:
        killed = []

        def kill_after_first_copy(call, phase):
            if phase == "after" and call.caller == "move" and call.method == "objects.rewrite" and not killed:
                killed.append(stack.move.process.pid)
                os.kill(stack.move.process.pid, signal.SIGKILL)
            return None

        with hook(stack.gcs, kill_after_first_copy):
            upload(stack, images)
            routed = wait_routed(stack, set(images))
        exactly_once(routed, set(images))
        assert killed and killed[0] != os.getpid()
        assert stack.move.restarts == 1 and stack.move.process.pid != killed[0]
        assert stack.dead_letters() == []
        assert stack.wait_for_records(len(images)) == len(images)
        assert not list(stack.records_dir.rglob(f"{os.getpid()}-*.parquet")), "written by the handlers"


def test_a_restart_mid_run_loses_nothing(tmp_path, small_model, isolated_env):
    images = {f"batch/part-{i:03d}.jpg": image_bytes(defect="blowhole" if i % 3 else None) for i in range(30)}
    config = StackConfig(model_path=small_model, state_dir=tmp_path)
    with LocalStack(config) as stack:
        upload(stack, images)
        unfinished = stack.inbound_names()
    assert unfinished, "the first stack must stop with work still in flight"
    with LocalStack(config) as stack:
        routed = wait_routed(stack, set(images))
        exactly_once(routed, set(images))


# --- outages, re-drive, and a stack that cleans up after itself -------------------------------------


def dead_lettered(stack: LocalStack, expected: int, timeout: float = 60) -> None:
    """Wait until `expected` messages sit in the dead-letter subscription (without taking them)."""
    from scripts.local.pubsub import held_subscription

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.pubsub.held_count(stack.config.dead_letter_topic) >= expected:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"fewer than {expected} dead letters in {held_subscription(stack.config.dead_letter_topic)}"
    )


def test_a_move_outage_longer_than_the_retries_strands_nothing(small_model, isolated_env, caplog):
    """Pub/Sub gives up after its delivery attempts; before the sweep, 169 of 200 images stayed in
    inbound with no ERROR line. The sweep publishes the dead-lettered predictions again."""
    images = {f"outage/part-{i:02d}.png": image_bytes("PNG") for i in range(12)}
    config = StackConfig(model_path=small_model, use_emulator=False, redrive_after_s=3600)
    with LocalStack(config) as stack:
        stack.move_outage.set()
        upload(stack, images)
        dead_lettered(stack, len(images))
        assert sorted(stack.inbound_names()) == sorted(images)
        stack.move_outage.clear()
        report = stack.sweep()
        assert report["replayed"] == len(images) and report["held_for_people"] == 0
        routed = wait_routed(stack, set(images))
        exactly_once(routed, set(images))
    assert len(logged(caplog, "dead-lettered prediction; publishing it again", "ERROR")) == len(images)


def test_an_image_stranded_in_inbound_is_re_driven_once_with_its_reason(small_model, isolated_env, caplog):
    """An image whose event never arrived (or whose prediction kept failing) is predicted again."""
    config = StackConfig(model_path=small_model, use_emulator=False, redrive_after_s=1)
    with LocalStack(config) as stack:
        stack.gcs.on_finalize.clear()  # Eventarc never tells predict about it
        upload(stack, {"lost/part.png": image_bytes("PNG")})
        time.sleep(1.2)
        report = stack.sweep()
        assert (report["stranded"], report["redriven"], report["failed"]) == (1, 1, 0)
        exactly_once(wait_routed(stack, {"lost/part.png"}), {"lost/part.png"})
        assert stack.sweep()["stranded"] == 0  # a second sweep finds nothing left to do


def test_emulators_die_with_the_process_that_started_them(tmp_path):
    """`kill -9` of the demo used to leave the emulators running."""
    script = (
        "from scripts.local.gcs import FakeGcs; import time, sys;"
        "g = FakeGcs().start(); print(g._process.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # running
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, 9)
    raise AssertionError("fake-gcs-server outlived the process that started it")


def test_upload_without_a_running_demo_says_so_at_once(tmp_path):
    (tmp_path / "stack.json").write_text('{"gcs": "http://127.0.0.1:9", "inbound": "x", "pid": 999999999}')
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local.upload", "--state", str(tmp_path), __file__],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "no running demo" in result.stderr
    assert time.monotonic() - started < 15
    assert not (tmp_path / "stack.json").exists()  # a dead demo's file is cleaned up


def test_the_on_disk_emulator_never_writes_outside_its_folder(tmp_path, isolated_env):
    from google.api_core import exceptions as gexc

    from scripts.local.gcs import FakeGcs

    root = tmp_path / "gcs"
    with FakeGcs(root=root) as gcs:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        storage.client.cache_clear()
        bucket = storage.client().create_bucket("disk")
        for name in ("../escape.jpg", "a/../../escape.jpg", "./here.jpg"):
            with pytest.raises(gexc.BadRequest):
                bucket.blob(name).upload_from_string(b"x")
        bucket.blob("fine/name.jpg").upload_from_string(b"x")
    outside = [p for p in tmp_path.rglob("*") if "escape" in p.name]
    assert outside == []


def test_redrive_by_hand_runs_the_sweep_of_the_running_demo(small_model, isolated_env, tmp_path):
    import json

    config = StackConfig(model_path=small_model, use_emulator=False, redrive_after_s=1)
    with LocalStack(config) as stack:
        stack.gcs.on_finalize.clear()
        upload(stack, {"by-hand/part.png": image_bytes("PNG")})
        running = {
            "gcs": stack.gcs.url,
            "inbound": config.inbound_bucket,
            "sweep": stack.sweeper.url,
            "pid": os.getpid(),
        }
        (tmp_path / "stack.json").write_text(json.dumps(running))
        time.sleep(1.2)
        result = subprocess.run(
            [sys.executable, "-m", "scripts.sweep", "--state", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "re-drove 1 of 1 stranded image(s)" in result.stdout
        exactly_once(wait_routed(stack, {"by-hand/part.png"}), {"by-hand/part.png"})
