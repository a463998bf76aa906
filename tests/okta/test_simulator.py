"""The Okta simulator answers as Okta documents: filters, paging, the System Log, rate-limit
buckets, error bodies and both forms of SSWS authorization."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote


from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from tests.simulator.running import PROCESS_WAIT_SECONDS

ROOT = Path(__file__).resolve().parents[2]


def get(sim: OktaSimulator, target: str, auth: str | None = None) -> tuple[int, Any, list[tuple[str, str]]]:
    context = ssl.create_default_context(cafile=sim.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=5)
    conn.request("GET", target, headers={"Authorization": auth or f"SSWS {sim.api_token}"})
    response = conn.getresponse()
    return response.status, json.loads(response.read()), response.getheaders()


def links(headers: list[tuple[str, str]]) -> list[str]:
    return [v for k, v in headers if k == "Link"]


def test_both_ssws_forms_are_accepted_and_a_bad_token_is_e0000011(sim: OktaSimulator) -> None:
    assert get(sim, "/api/v1/users?limit=1", f"SSWS{sim.api_token}")[0] == 200
    status, body, _ = get(sim, "/api/v1/users?limit=1", "SSWS nope")

    assert status == 401
    assert body["errorCode"] == "E0000011" and set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}


def test_lists_send_self_then_next_links_and_rate_limit_headers(sim: OktaSimulator) -> None:
    status, body, headers = get(sim, "/api/v1/users?limit=10")

    assert status == 200 and len(body) == 10
    self_link, next_link = links(headers)
    assert self_link.endswith('rel="self"') and next_link.endswith('rel="next"') and "after=" in next_link
    names = {k for k, _ in headers}
    assert {"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", "Date"} <= names
    assert dict(headers)["X-Rate-Limit-Limit"] == "600"


def test_limits_are_capped_at_the_endpoint_maximum(sim: OktaSimulator, org: OktaOrg) -> None:
    _, body, _ = get(sim, "/api/v1/users?limit=100000")

    assert len(body) == 30  # all of them, in one page of at most 200


def test_plain_user_list_omits_deprovisioned_but_a_filter_includes_them(sim: OktaSimulator, org: OktaOrg) -> None:
    gone = org.user_ids[0]
    org.deactivate(gone)

    _, plain, _ = get(sim, "/api/v1/users")
    _, filtered, _ = get(sim, "/api/v1/users?filter=" + quote('status eq "DEPROVISIONED"'))

    assert gone not in {u["id"] for u in plain}
    assert [u["id"] for u in filtered] == [gone]


def test_last_updated_filter_and_an_invalid_filter(sim: OktaSimulator, org: OktaOrg, clock: ManualClock) -> None:
    clock.advance(minutes=5)
    uid = org.hire("Ada", "Lovelace")
    since = (clock().replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    _, changed, _ = get(sim, "/api/v1/users?filter=" + quote(f'lastUpdated ge "{since}"'))
    status, error, _ = get(sim, "/api/v1/users?filter=" + quote('profile.nickName eq "x"'))

    assert [u["id"] for u in changed] == [uid]
    assert (status, error["errorCode"]) == (400, "E0000031")


def test_a_filter_of_ids_or_ed_together_lists_exactly_those_users(sim: OktaSimulator, org: OktaOrg) -> None:
    wanted = org.user_ids[:3]
    ids = " or ".join(f'id eq "{uid}"' for uid in [*wanted, "00u-nobody"])
    mixed = f'id eq "{wanted[0]}" or status eq "DEPROVISIONED"'  # not all one path: term by term
    org.deactivate(wanted[2])

    _, found, _ = get(sim, "/api/v1/users?filter=" + quote(ids))
    _, either, _ = get(sim, "/api/v1/users?filter=" + quote(mixed))

    assert sorted(u["id"] for u in found) == sorted(wanted)  # DEPROVISIONED too, as any filter
    assert sorted(u["id"] for u in either) == sorted([wanted[0], wanted[2]])


def test_search_supports_starts_with(sim: OktaSimulator, org: OktaOrg) -> None:
    uid = org.hire("Zelda", "Zimmer", "zelda@example.com")

    _, found, _ = get(sim, "/api/v1/users?search=" + quote('profile.email sw "zel"'))

    assert [u["id"] for u in found] == [uid]


def test_groups_filter_on_membership_time(sim: OktaSimulator, org: OktaOrg, clock: ManualClock) -> None:
    clock.advance(minutes=5)
    group = org.group_ids[2]
    org.add_member(group, next(u for u in org.user_ids if u not in org.members[group]))
    since = clock().strftime("%Y-%m-%dT%H:%M:%S.000Z")

    _, found, _ = get(sim, "/api/v1/groups?filter=" + quote(f'lastMembershipUpdated ge "{since}" and type eq "OKTA_GROUP"'))

    assert [g["id"] for g in found] == [group]


def test_app_users_carry_scope_and_the_embedded_user(sim: OktaSimulator, org: OktaOrg) -> None:
    app = org.app_id
    _, app_users, _ = get(sim, f"/api/v1/apps/{app}/users?expand=user&limit=500")

    scopes = {u["id"]: u["scope"] for u in app_users}
    assert scopes == org.app_user_ids(app)[1]  # type: ignore[arg-type]
    assert all(u["_embedded"]["user"]["id"] == u["id"] for u in app_users)


def test_polling_the_log_always_gives_a_next_link(sim: OktaSimulator, org: OktaOrg) -> None:
    _, events, headers = get(sim, "/api/v1/logs?since=" + quote(org.now()))
    assert events == [] and links(headers)[-1].endswith('rel="next"')
    cursor = links(headers)[-1].split("<", 1)[1].split(">", 1)[0].split(str(sim.port), 1)[1]

    org.leave(org.user_ids[1], delete=True)
    _, events, headers = get(sim, cursor)

    assert [e["eventType"] for e in events if e["eventType"].startswith("user.")] == [
        "user.lifecycle.deactivate", "user.lifecycle.delete.initiated", "user.lifecycle.delete.completed"]
    assert links(headers)[-1].endswith('rel="next"')


def test_an_empty_bucket_answers_429_with_e0000047(org: OktaOrg) -> None:
    with OktaSimulator(org, rate_limits={"users.list": 2}) as sim:
        statuses = [get(sim, "/api/v1/users?limit=1") for _ in range(3)]

    status, body, headers = statuses[-1]
    assert [s[0] for s in statuses] == [200, 200, 429]
    assert body["errorCode"] == "E0000047" and dict(headers)["X-Rate-Limit-Remaining"] == "0"


def test_generate_builds_a_large_org_quickly() -> None:
    import time

    started = time.perf_counter()
    org = OktaOrg.generate(users=20_000, groups=400, memberships=40_000, seed=2)

    assert time.perf_counter() - started < 5
    assert len(org.users) == 20_000 and sum(len(m) for g, m in org.members.items() if g != org.everyone_id) == 40_000


def test_run_cli_prints_what_a_client_needs_and_stops_on_interrupt() -> None:
    code = "from simulators.okta import run_cli; run_cli(users=20, groups=3, seed=1, port=0)"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert "org URL:   https://127.0.0.1:" in text and "API token:" in text and "CA bundle:" in text
        assert 'kind = "okta"' in text
    finally:
        process.send_signal(signal.SIGINT)
        # A generous bound: a busy machine must not fail this; a simulator that ignores
        # Ctrl-C still does.
        assert process.wait(timeout=PROCESS_WAIT_SECONDS) == 0
        process.stdout.close()
    ca_bundle = Path(text.split("CA bundle: ")[1].split()[0])
    assert not ca_bundle.parent.exists()  # its temporary files are gone
