from __future__ import annotations

import pytest

from console.roles import PERMISSIONS, ROLES, RoleError, allowed, check_grants, check_role, permissions_of


def test_each_role_does_its_own_work_and_no_more() -> None:
    assert permissions_of("admin") == PERMISSIONS
    assert permissions_of("manager") == {"campaigns.view", "campaigns.run"}
    assert permissions_of("auditor") == {"recordings.search", "recordings.play"}
    assert permissions_of("supervisor") == {"live.view", "supervise", "campaigns.view"}
    assert not allowed("manager", (), "recordings.play")
    assert not allowed("auditor", (), "campaigns.run")
    assert [role for role in ROLES if allowed(role, (), "flows.publish")] == ["admin"]


def test_a_grant_adds_one_permission_to_the_role() -> None:
    assert allowed("manager", {"recordings.play"}, "recordings.play")
    assert not allowed("manager", {"recordings.play"}, "recordings.search")


def test_unknown_role_may_do_nothing_and_unknown_grants_are_ignored() -> None:
    assert permissions_of("root", {"campaigns.run", "everything"}) == {"campaigns.run"}
    assert permissions_of("root") == frozenset()


def test_typos_are_refused_with_the_choices() -> None:
    with pytest.raises(RoleError, match="role 'manger' is not one of admin, auditor, manager, supervisor"):
        check_role("manger")
    with pytest.raises(RoleError, match=r"permission .recording\.play. is not one of"):
        check_grants(["recording.play"])
    with pytest.raises(RoleError, match=r"permission .campaign\.view."):
        allowed("admin", (), "campaign.view")
