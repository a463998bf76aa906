"""A simulator's state on disk: the org or tenant comes back whole, new ids never reuse old
ones, a delta link taken before a restart reads on after it, and the CA stays the same."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

from simulators import state
from simulators.tls import persistent_ca
from simulators.graph import GraphSimulator, GraphTenant
from simulators.okta import OktaOrg


def through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def test_okta_org_comes_back_whole_and_new_ids_follow_deleted_ones() -> None:
    org = OktaOrg.generate(users=6, groups=2, memberships=8, seed=2, app_users=1, app_groups=1)
    hired = org.hire("Zed", "Zero", groups=[org.group_ids[1]])
    org.leave(hired, delete=True)
    org.deactivate(org.user_ids[0])

    restored = state.okta_org_from_json(through_json(state.okta_org_to_json(org)))

    assert state.okta_org_to_json(restored) == state.okta_org_to_json(org)
    assert restored.hire("Amy", "New") > hired
    assert restored.create_group("New") > max(org.group_ids)


def test_graph_tenant_comes_back_and_a_delta_link_taken_before_reads_on() -> None:
    tenant = GraphTenant.generate(users=6, groups=2, memberships=8, seed=2, assigned_users=2)
    with GraphSimulator(tenant) as before:
        link = before.delta.latest("u", ["id", "accountEnabled"]).delta_token
    tenant.disable(tenant.user_order[1])

    restored = state.graph_tenant_from_json(through_json(state.graph_tenant_to_json(tenant)))

    assert state.graph_tenant_to_json(restored) == state.graph_tenant_to_json(tenant)
    assert restored.hire("new@contoso.example") not in tenant.users  # the GUID sequence goes on
    with GraphSimulator(restored) as after:
        assert link is not None
        items = after.delta.resume_delta(link).items
    assert [(u["id"], u["accountEnabled"]) for u in items][0] == (tenant.user_order[1], False)


def test_state_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    state.save(tmp_path, {"kind": "okta", "port": 1})
    state.save(tmp_path, {"kind": "okta", "port": 2})
    assert state.load(tmp_path) == {"kind": "okta", "port": 2}
    assert (tmp_path / "state.json").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert state.load(tmp_path / "elsewhere") is None


def test_persistent_ca_is_the_same_ca_after_a_restart(tmp_path: Path) -> None:
    first = persistent_ca(tmp_path)
    again = persistent_ca(tmp_path)
    assert again.ca_path == first.ca_path
    trusting_the_file = ssl.create_default_context(cafile=first.ca_path)
    assert trusting_the_file.cert_store_stats()["x509_ca"] == 1
    assert again.ca.cert_pem.bytes() == first.ca.cert_pem.bytes()
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
