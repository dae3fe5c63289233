"""The provider's claims as a user here: the username claim, groups mapped (or taken as they are,
a group path's leading / dropped), admins by group, the subject qualified by the issuer."""

from __future__ import annotations

from typing import Any

import pytest

from control.errors import InvalidError
from control.services.oidc import Identity, Pending, Provider
from control.settings import OidcSettings

ISSUER = "https://id.example/realms/perf"


def identity(claims: dict[str, Any], **settings: Any) -> Identity:
    p = Provider(OidcSettings(issuer=ISSUER, client_id="shibuya", **settings))
    p._metadata = {"issuer": ISSUER}
    return p._identity({"sub": "u-1", **claims})


def test_groups_are_taken_as_they_are_without_a_map() -> None:
    who = identity({"preferred_username": "carol", "groups": ["/team-a", "ops", ""]})
    assert who == Identity(subject=f"{ISSUER} u-1", name="carol",
                           groups=frozenset({"team-a", "ops"}), admin=False)  # fmt: skip


def test_a_map_names_the_only_groups_that_count_and_admins_are_by_group() -> None:
    who = identity({"preferred_username": "dave", "groups": ["/perf", "/admins", "/other"]},
                   groups={"perf": "team-a"}, admin_groups=["/admins"])  # fmt: skip
    assert (who.groups, who.admin) == (frozenset({"team-a"}), True)


def test_other_claims_can_name_the_user_and_hold_the_groups() -> None:
    who = identity({"email": "e@x.test", "roles": "team-b"}, username_claim="email",
                   groups_claim="roles")  # fmt: skip
    assert (who.name, who.groups) == ("e@x.test", frozenset({"team-b"}))


@pytest.mark.parametrize("name", [None, "", 7, "x" * 101])
def test_no_usable_name_no_user(name: object) -> None:
    with pytest.raises(InvalidError, match="no usable 'preferred_username' claim"):
        identity({"preferred_username": name})


def test_a_pending_login_survives_its_cookie_and_nothing_else_does() -> None:
    pending = Pending.new()
    assert Pending.load(pending.dump()) == pending
    assert len({pending.state, pending.nonce, pending.verifier}) == 3
    for raw in ("", "a.b", "a..c", "a.b.c.d"):
        assert Pending.load(raw) is None
