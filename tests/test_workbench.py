"""The reviewer's workbench over a shift, through the app's API (Flask's test client, against
fake-gcs-server behind the enforcing proxy): what the screen is told is true, what a reviewer
decides was leased to their tab, roles stay apart, and nobody can starve the queue."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from inspection import review_index
from review_app import create_app
from review_app import leases as lease_clock
from review_app.unclear_queue import MAX_LEASES
from tests.review_helpers import AUDIENCE, FakeIap, Reviewer

_arrivals = itertools.count()


@pytest.fixture(scope="module")
def iap():
    fake = FakeIap()
    yield fake
    fake.stop()


@pytest.fixture
def bucket(make_bucket):
    return make_bucket("prediction")


@pytest.fixture
def make_app(bucket, iap, tmp_path):
    def make(**config):
        settings = {
            "PREDICTION_BUCKET": bucket.name,
            "REVIEW_AUTH": "iap",
            "IAP_AUDIENCE": AUDIENCE,
            "IAP_CERTS_URL": iap.certs_url,
            "RECORDS": str(tmp_path / "records"),
            "ROLE": "review",
            "ALLOWED_REVIEWERS": "*",
            **config,
        }
        return create_app({k: v for k, v in settings.items() if v is not None})  # None: not set

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def unclear(bucket, name: str, meta: dict | None = None):
    blob = bucket.blob(f"unclear/{name}")
    arrived = (datetime(2026, 11, 25, 10, tzinfo=UTC) + timedelta(seconds=next(_arrivals))).isoformat()
    blob.metadata = {
        "predicted_label": "ok",
        "predicted_score": "0.710000",
        "routed_at": arrived,
        **(meta or {}),
    }
    blob.upload_from_string(b"\xff\xd8 image", content_type="image/jpeg")
    review_index.add(review_index.Entry(bucket.name, blob.name, blob.generation, arrived))
    return blob


def tab(app, iap, email: str = "alice@example.com") -> Reviewer:
    return Reviewer(app.test_client(), iap.token(email))


def stored(bucket) -> list[str]:
    return sorted(b.name for b in bucket.list_blobs(prefix="human_decided/"))


# --- the screen tells the truth ------------------------------------------------------------------------


def test_two_tabs_of_one_reviewer_never_share_an_image(app, iap, bucket):
    """Before: O in tab 1, then D in tab 2 on the same image; tab 2 said "Saved: defect" with ok stored."""
    unclear(bucket, "a.jpg")
    unclear(bucket, "b.jpg")
    first, second = tab(app, iap), tab(app, iap)
    one, two = first.next(), second.next()
    assert one["name"] != two["name"]
    assert first.decide(one, "ok").status_code == 200
    refused = second.decide(one, "defect")
    assert refused.status_code == 409
    assert refused.get_json()["reason"] == "other_tab" and "as ok" in refused.get_json()["error"]
    assert "human_decided/ok/a.jpg" in stored(bucket) and not any("defect" in n for n in stored(bucket))


def test_a_stale_request_for_a_decision_since_undone_is_told_so(app, iap, bucket):
    """Before: 200 "Saved" with generation 0, while the image was back in unclear/ undecided."""
    unclear(bucket, "x.jpg")
    page = tab(app, iap)
    item = page.next()
    decision = page.decide(item, "ok").get_json()
    assert page.undo(decision).status_code == 200
    late = page.decide(item, "ok")  # the first request, delivered again after the undo
    assert late.status_code == 409 and late.get_json()["reason"] == "undone"
    assert stored(bucket) == []


def test_a_lapsed_lease_and_a_vanished_image_are_told_as_what_they_are(app, iap, bucket, monkeypatch):
    """Before: a lost lease said "already decided by someone else"; a vanished image said "It
    returns to the queue"."""
    blob = unclear(bucket, "lapsed.jpg")
    page = tab(app, iap)
    item = page.next()
    later = lease_clock.now() + timedelta(minutes=6)
    monkeypatch.setattr(lease_clock, "now", lambda: later)
    lapsed = page.decide(item, "ok")
    assert lapsed.status_code == 409 and lapsed.get_json()["reason"] == "lease_lost"
    assert "ran out" in lapsed.get_json()["error"]
    monkeypatch.undo()
    item = page.next()
    blob.delete()  # gone meanwhile (a person cleaned up the bucket)
    gone = page.decide(item, "ok")
    assert gone.status_code == 409 and gone.get_json()["reason"] == "gone"
    assert "queue" not in gone.get_json()["error"]


def test_a_lease_is_renewed_while_the_image_is_on_screen(app, iap, bucket, monkeypatch):
    """Before: a reviewer who studied one image for more than 5 minutes lost it silently."""
    unclear(bucket, "studied.jpg")
    page, other = tab(app, iap), tab(app, iap, "bob@example.com")
    item = page.next()
    start = lease_clock.now()
    for minutes in (2, 4, 6, 8):  # the page renews every lease third while the image is visible
        monkeypatch.setattr(lease_clock, "now", lambda m=minutes: start + timedelta(minutes=m))
        renewed = page.post("/api/renew", {"name": item["name"], "generation": item["generation"]})
        assert renewed.status_code == 200 and renewed.get_json()["url"]
        assert other.next() == {"empty": True}
    assert page.decide(item, "defect").status_code == 200


def test_the_third_answer_not_a_part_is_kept_apart(app, iap, bucket):
    unclear(
        bucket, "blank.jpg", {"unclear_reason": "unusual_input", "unclear_detail": "contrast 0.4 is outside"}
    )
    page = tab(app, iap)
    item = page.next()
    assert (item["unclear_reason"], item["unclear_detail"]) == ("unusual_input", "contrast 0.4 is outside")
    assert page.decide(item, "unusable").get_json()["label"] == "unusable"
    assert stored(bucket) == ["human_decided/unusable/blank.jpg"]


# --- roles -------------------------------------------------------------------------------------------


def status(app, iap, email: str, path: str) -> int:
    return app.test_client().get(path, headers={"x-goog-iap-jwt-assertion": iap.token(email)}).status_code


def test_an_auditor_who_is_not_a_reviewer_may_audit_although_reviewers_are_listed(make_app, iap):
    """Before: with ALLOWED_REVIEWERS set, the reviewer check ran first and the auditor got 403."""
    audit = make_app(ROLE="audit", ALLOWED_REVIEWERS="r@example.com", ALLOWED_AUDITORS="a@example.com")
    assert status(audit, iap, "a@example.com", "/audit") == 200
    assert status(audit, iap, "r@example.com", "/audit") == 403


def test_each_service_serves_only_its_role(make_app, iap):
    review, audit = make_app(ROLE="review"), make_app(ROLE="audit")
    assert status(review, iap, "a@example.com", "/audit") == 404
    assert status(audit, iap, "a@example.com", "/") == 404
    assert status(audit, iap, "a@example.com", "/api/queue") == 404


@pytest.mark.parametrize("listed", [" , ", ",", "", None])
def test_a_list_that_names_no_one_or_is_not_set_admits_no_one(make_app, iap, listed):
    """Before: ALLOWED_AUDITORS=" , " opened the audit view to everyone; unset, it admitted anyone
    with a valid IAP token (issue 34, finding 6), though the README said nobody. Fail closed: only
    `*` leaves it to IAP, and the program sets that only when a list names a group."""
    config = {"ALLOWED_AUDITORS": listed, "ALLOWED_REVIEWERS": listed}
    assert status(make_app(ROLE="audit", **config), iap, "a@example.com", "/audit") == 403
    assert status(make_app(ROLE="review", **config), iap, "a@example.com", "/") == 403
    assert status(make_app(ROLE="audit", ALLOWED_AUDITORS="*"), iap, "a@example.com", "/audit") == 200


@pytest.fixture(scope="module")
def deployed():
    """The review and audit services as the Pulumi program declares them: each one's environment,
    and who IAP admits to it (its service-level bindings)."""
    from scripts.program.mocks import dev_config, run_program

    mocks, _ = run_program(
        dev_config(
            reviewers=["user:rev@example.com", "user:sam@example.com"],
            auditors=["user:aud@example.com", "user:sam@example.com"],
        )
    )
    envs = {
        r["inputs"]["service"]: r["inputs"]["envVariables"]
        for r in mocks.resources
        if r["type"] == "gcp:appengine/standardAppVersion:StandardAppVersion"
        and r["inputs"]["service"] != "default"
    }
    admitted = {
        (r["inputs"]["service"], r["inputs"]["member"])
        for r in mocks.resources
        if r["type"] == "gcp:iap/appEngineServiceIamMember:AppEngineServiceIamMember"
    }
    return envs, admitted


def through_iap(deployed, bucket, iap, tmp_path, service: str, email: str, method: str, path: str) -> int:
    """A request as it would fare in the cloud: IAP refuses whom the service's bindings do not name
    (https://cloud.google.com/iap/docs/managing-access); the app, started with the environment the
    program gives it, decides the rest."""
    envs, admitted = deployed
    if (service, f"user:{email}") not in admitted:
        return 403
    app = create_app(
        {
            **envs[service],
            "PREDICTION_BUCKET": bucket.name,  # the emulator's bucket, the test keys and a local store
            "IAP_AUDIENCE": AUDIENCE,
            "IAP_CERTS_URL": iap.certs_url,
            **({"RECORDS": str(tmp_path / "records")} if "RECORDS" in envs[service] else {}),
        }
    )
    client = app.test_client()
    headers = {"x-goog-iap-jwt-assertion": iap.token(email)}
    if method == "GET":
        return client.get(path, headers=headers).status_code
    return client.post(path, headers=headers, json={}).status_code


@pytest.mark.parametrize(
    ("email", "reviews", "audits"),
    [
        ("rev@example.com", True, False),
        ("aud@example.com", False, True),
        ("sam@example.com", True, True),
        ("nobody@example.com", False, False),
    ],
    ids=["reviewer", "auditor", "both", "neither"],
)
def test_each_role_combination_in_the_deployed_configuration(
    deployed, bucket, iap, tmp_path, email, reviews, audits
):
    """Issue 19, finding 8: the deployed stack never set ALLOWED_REVIEWERS and gave auditors IAP
    access to the whole app, so auditors could decide and undo. Now each role is its own service
    with its own IAP bindings and allow list."""

    def ask(service: str, method: str, path: str) -> int:
        return through_iap(deployed, bucket, iap, tmp_path, service, email, method, path)

    assert (ask("acme-qi-review", "GET", "/") == 200) is reviews
    assert (ask("acme-qi-review", "GET", "/api/queue") == 200) is reviews
    assert (ask("acme-qi-audit", "GET", "/audit") == 200) is audits
    # Nobody decides or undoes on the audit service, and nobody audits on the review service.
    assert ask("acme-qi-audit", "POST", "/api/decide") in (403, 404)
    assert ask("acme-qi-audit", "POST", "/api/undo") in (403, 404)
    assert ask("acme-qi-review", "GET", "/audit") in (403, 404)
    if not reviews:
        assert ask("acme-qi-review", "POST", "/api/decide") == 403


def test_both_roles_in_one_service_are_for_local_mode_only(bucket):
    from inspection.errors import ConfigError

    with pytest.raises(ConfigError, match="ROLE=both"):
        create_app({"PREDICTION_BUCKET": bucket.name, "IAP_AUDIENCE": AUDIENCE, "ROLE": "both"})


# --- a fair queue ------------------------------------------------------------------------------------


def test_taking_a_lease_is_a_csrf_checked_post(app, iap, bucket):
    """Before: GET and HEAD /api/next wrote leases, with no CSRF or Origin check."""
    unclear(bucket, "x.jpg")
    page = tab(app, iap)
    assert page.get("/api/next").status_code == 405
    assert page.post("/api/next", {}, csrf="").status_code == 403
    assert page.next()["name"] == "unclear/x.jpg"


def test_one_reviewer_cannot_hoard_the_queue(app, iap, bucket):
    """Before: one client leased 200 images in 3.9 s through exclude=, and everyone else saw
    "Nothing to review" while 60 images waited."""
    for n in range(12):
        unclear(bucket, f"part-{n}.jpg")
    hoarder, got = tab(app, iap, "h@example.com"), []
    for _ in range(10):
        answer = hoarder.post("/api/next", {"exclude": got[-4:], "kind": "prefetch"})
        if answer.status_code != 200:
            assert answer.status_code == 409 and answer.get_json()["reason"] == "too_many"
            continue
        got.append(answer.get_json()["name"])
    assert len(got) == MAX_LEASES
    assert hoarder.post("/api/next", {"exclude": [f"x{n}" for n in range(5)]}).status_code == 400
    assert tab(app, iap, "bob@example.com").next()["name"] not in got


def _held_by(bucket, reviewer: str) -> int:
    from review_app.leases import Leases

    return sum(
        1 for lease in Leases(bucket.name, 300).all().values() if lease.live() and lease.reviewer == reviewer
    )


def test_every_way_of_holding_an_image_counts_against_one_cap(app, iap, bucket):
    """Issue 34, finding 1: undo was an uncapped lease. One client decided and undid 288 images in
    20 s and held 288 of 316 waiting. A scripted client now deciding, undoing, prefetching and
    renewing as fast as it can never holds more than MAX_LEASES."""
    for n in range(12):
        unclear(bucket, f"part-{n}.jpg")
    client, decisions = tab(app, iap, "h@example.com"), []
    for _ in range(12):  # decide as fast as it can, every one inside the undo window
        item = client.next()
        decisions.append(client.decide(item, "ok").get_json())
    answers = []
    for decision in decisions:  # then undo them all: each undo holds the image it brings back
        answers.append(client.undo(decision))
        client.next(kind="prefetch")
        assert _held_by(bucket, "h@example.com") <= MAX_LEASES
    refused = [a for a in answers if a.status_code == 409]
    assert refused and all(a.get_json()["reason"] == "too_many" for a in refused)
    assert _held_by(bucket, "h@example.com") == MAX_LEASES


def test_a_page_opened_after_crashed_tabs_is_told_what_to_do_and_can_do_it(app, iap, bucket, monkeypatch):
    """Issue 34, finding 2: two crashed tabs held 4 images; a fresh page got 409 "decide or skip them
    first", could do neither, and never retried. Now it is told it may take them back, and can; and
    once the crashed tabs' images have gone quiet (no renewal), a fresh page takes them by itself."""
    from review_app import leases as lease_clock

    for n in range(8):
        unclear(bucket, f"part-{n}.jpg")
    for _ in range(2):  # two tabs that load their image and the next one, then crash
        crashed = tab(app, iap)
        shown = crashed.next()
        crashed.next(exclude=(shown["name"],), kind="prefetch")
    fresh = tab(app, iap)
    answer = fresh.post("/api/next", {})
    assert answer.status_code == 409 and answer.get_json()["reason"] == "too_many"
    assert "take their images back here" in answer.get_json()["error"]
    taken = fresh.post("/api/next", {"reclaim": True})
    assert taken.status_code == 200 and taken.get_json()["name"].startswith("unclear/")
    assert _held_by(bucket, "alice@example.com") <= MAX_LEASES

    from review_app import unclear_queue

    later = lease_clock.now() + timedelta(minutes=4)  # no tab renewed: they have gone quiet
    monkeypatch.setattr(lease_clock, "now", lambda: later)
    monkeypatch.setattr(unclear_queue, "now", lambda: later)
    for _ in range(2):
        crashed = tab(app, iap)
        assert "name" in crashed.next()
    answer = tab(app, iap).post("/api/next", {})
    assert answer.status_code == 200, answer.get_json()


def test_a_replayed_decision_since_undone_is_told_it_was_undone_whatever_its_label(app, iap, bucket):
    """Issue 34, finding 4: a replayed, since-undone decision with another label was told "you had
    already decided it as ok", though nothing was stored and the image was back in the queue."""
    unclear(bucket, "x.jpg")
    page = tab(app, iap)
    item = page.next()
    decision = page.decide(item, "ok").get_json()
    assert page.undo(decision).status_code == 200
    for label in ("defect", "ok", "unusable"):
        late = page.decide(item, label)
        assert late.status_code == 409 and late.get_json()["reason"] == "undone", label
        assert "nothing is stored" in late.get_json()["error"]
    assert stored(bucket) == []


def test_at_the_end_of_the_queue_a_prefetched_image_goes_to_who_will_look_at_it(app, iap, bucket):
    """Before: the last image sat in another reviewer's prefetch for up to 5 minutes."""
    unclear(bucket, "first.jpg")
    unclear(bucket, "last.jpg")
    alice, bob = tab(app, iap), tab(app, iap, "bob@example.com")
    shown = alice.next()
    prefetched = alice.next(exclude=(shown["name"],), kind="prefetch")
    assert prefetched["name"] == "unclear/last.jpg"
    taken = bob.next()  # nothing else waits: bob gets the image alice only prefetched
    assert taken["name"] == "unclear/last.jpg" and taken["lease"] == "view"
    promoted = alice.post("/api/show", {"name": prefetched["name"], "generation": prefetched["generation"]})
    assert promoted.status_code == 409  # alice's page fetches another instead of showing it
    assert bob.decide(taken, "ok").status_code == 200


def test_undo_never_takes_a_newer_photo_another_reviewer_has_on_screen(app, iap, bucket):
    unclear(bucket, "same.jpg")
    alice, bob = tab(app, iap), tab(app, iap, "bob@example.com")
    decision = alice.decide(alice.next(), "ok").get_json()
    unclear(bucket, "same.jpg")  # a newer photo of the same name arrives
    newer = bob.next()
    assert newer["name"] == "unclear/same.jpg"
    restored = alice.undo(decision)
    assert restored.status_code == 200 and restored.get_json()["name"] != "unclear/same.jpg"
    assert bob.decide(newer, "defect").status_code == 200  # bob still holds his


# --- names -------------------------------------------------------------------------------------------


def test_a_name_with_a_direction_override_is_never_shown_and_invisible_ones_are_shown_as_what_they_are(
    app, iap, bucket
):
    """Before: line-9/<U+202E>gepj.7-trap displayed as line-9/part-7.jpeg. Since issue 30 such a name
    is quarantined where the queue finds it, never served; a name with an invisible character the
    rule lets through is shown with that character spelled out."""
    unclear(bucket, "line-9/\u202egepj.7-trap")
    unclear(bucket, "line-9/part\u200b-7.jpeg")
    item = tab(app, iap).next()
    assert item["display_name"] == "line-9/part⟨U+200B⟩-7.jpeg"
    assert [b.name for b in bucket.list_blobs(prefix="quarantine/")] != []


# --- bad input gets 400, never 500 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/decide", {"name": "unclear/\ud800.jpg", "generation": "1", "label": "ok"}),
        ("/api/undo", {"decision": "human_decided/ok/\udfff.jpg", "generation": "1"}),
        ("/api/decide", {"name": "unclear/x.jpg", "generation": "²", "label": "ok"}),
        ("/api/decide", {"name": "unclear/x.jpg", "generation": "①", "label": "ok"}),
        ("/api/decide", {"name": "unclear/x.jpg", "generation": "9" * 4301, "label": "ok"}),
        ("/api/decide", {"name": "unclear/x.jpg", "generation": "1", "label": "\ud800"}),
        ("/api/next", {"tab": "tab with spaces"}),
        ("/api/next", {"kind": "everything"}),
    ],
    ids=[
        "surrogate name",
        "surrogate decision",
        "superscript",
        "circled",
        "4301 digits",
        "label",
        "tab",
        "kind",
    ],
)
def test_every_field_is_validated(app, iap, path, body):
    page = tab(app, iap)
    assert page.post(path, body).status_code == 400


def test_odd_audit_arguments_are_not_a_500(make_app, iap):
    audit = make_app(ROLE="audit", ALLOWED_AUDITORS="a@example.com")
    for query in ("endpoint=x", "_method=POST", "_external=1", "label=maybe", "line=" + "x" * 400):
        assert status(audit, iap, "a@example.com", f"/audit?{query}") in (200, 400), query


def test_a_foreign_host_never_makes_the_audit_links_absolute(make_app, iap):
    """Before: `_external` in the query and a foreign Host header put the CSV link on that host."""
    audit = make_app(ROLE="audit", ALLOWED_AUDITORS="a@example.com")
    page = audit.test_client().get(
        "/audit?_external=1",
        headers={"x-goog-iap-jwt-assertion": iap.token("a@example.com"), "Host": "evil.example"},
    )
    assert page.status_code == 200 and "evil.example" not in page.get_data(as_text=True)


def test_an_unknown_key_id_fetches_the_keys_at_most_once_a_minute(make_app, iap):
    """Before: every request naming an unknown `kid` fetched Google's keys again, under a lock."""
    app = make_app()
    before = iap.fetches
    forged = iap.signer_with_kid("not-a-real-kid")
    for _ in range(20):
        token = iap.token("a@example.com", signer=forged)
        assert (
            app.test_client().get("/api/queue", headers={"x-goog-iap-jwt-assertion": token}).status_code
            == 401
        )
    assert iap.fetches - before <= 1
