"""Single sign-on against a real OpenID Connect provider (Keycloak, from Maven Central, as a
process): the authorization code flow with PKCE in a real chromium, the provider's groups mapped
to the API's (``OIDC__GROUPS``) and its admins (``OIDC__ADMIN_GROUPS``); a user of an LDAP
directory (UnboundID's, from Maven Central) that the provider federates gets in with the
directory's password and groups; a public client (no secret) works by PKCE alone; a callback
that was not started here, or a user whose name a local user holds, is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from shibuya.dev.keycloak import KeycloakServer
from shibuya.dev.ldap import LdapServer
from shibuya.dev.procs import free_port
from tests.support.api import ApiServer, start_api
from tests.support.browser import chromium, watched
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    LDAP_USERS,
    PUBLIC_CLIENT_ID,
    USERS,
    ldap_federation,
    realm,
)

pytestmark = pytest.mark.integration


@dataclass
class Sso:
    api: ApiServer
    """An API whose client is confidential (a secret and PKCE)."""
    public: ApiServer
    """An API on another port whose client is public (PKCE alone, no secret)."""
    keycloak: KeycloakServer


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    data = tmp_path_factory.mktemp("sso")
    port, public_port = free_port(), free_port()
    callback = f"http://127.0.0.1:{port}/ui/oidc/callback"
    users = {**USERS, "alice": ("alice-pw", ["team-a"])}  # a name a token user holds
    directory = LdapServer(data / "ldap", free_port(), LDAP_USERS)
    directory.start()
    provider = realm(callback, users, f"http://127.0.0.1:{public_port}/ui/oidc/callback")
    provider["components"] = ldap_federation(
        directory.url, directory.base_dn, directory.bind_dn, directory.bind_password
    )
    keycloak = KeycloakServer(data / "keycloak", free_port(), provider)
    groups = json.dumps({"team-a": "team-a", "team-b": "ops", "ldap-testers": "team-a"})
    apis: list[ApiServer] = []
    try:
        keycloak.start()
        apis.append(start_api(data / "api", f"sqlite:///{data / 'meta.db'}", PORT=str(port),
                              OIDC__ISSUER=keycloak.issuer, OIDC__CLIENT_ID=CLIENT_ID,
                              OIDC__CLIENT_SECRET=CLIENT_SECRET, OIDC__GROUPS=groups,
                              OIDC__ADMIN_GROUPS='["shibuya-admins"]'))  # fmt: skip
        apis.append(start_api(data / "public", f"sqlite:///{data / 'public.db'}",
                              PORT=str(public_port), OIDC__ISSUER=keycloak.issuer,
                              OIDC__CLIENT_ID=PUBLIC_CLIENT_ID, OIDC__GROUPS=groups))  # fmt: skip
        yield Sso(apis[0], apis[1], keycloak)
    finally:
        for api in apis:
            api.stop()
        keycloak.stop()
        directory.stop()


def sign_in(browser: Browser, api: ApiServer, user: str) -> tuple[Page, list[str]]:
    """``user`` through the provider's own login page; the page and its problems."""
    opened = watched(browser.new_context().new_page(), lambda url: "127.0.0.1" in url)
    page = opened.page
    page.goto(f"{api.base}/ui/")
    page.click("#sso")
    page.wait_for_url("**/realms/shibuya/protocol/openid-connect/auth?**")
    page.fill("#username", user)
    page.fill("#password", {**USERS, **LDAP_USERS}.get(user, ("alice-pw", []))[0])
    page.click("#kc-login")
    return page, opened.problems


def test_single_sign_on_in_a_real_browser(sso: Sso, tmp_path: Path) -> None:
    api = sso.api
    with chromium() as browser:
        carol, problems = sign_in(browser, api, "carol")
        expect(carol.locator("#who")).to_contain_text("carol")
        assert carol.url == f"{api.base}/ui/#/" or carol.url == f"{api.base}/ui/"
        me = carol.request.get(f"{api.base}/api/me").json()
        assert me == {"name": "carol", "groups": ["team-a"], "is_admin": False}
        cookie = {c["name"]: c for c in carol.context.cookies()}["shibuya_session"]
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        assert "shibuya_oidc" not in {c["name"] for c in carol.context.cookies()}
        carol.fill("#new-project input[name=name]", "carol's shop")
        carol.click("#new-project button[type=submit]")
        expect(carol.locator("h1")).to_contain_text("carol's shop")
        carol.screenshot(path=tmp_path / "sso-carol.png", full_page=True)
        assert problems == []

        dave, problems = sign_in(browser, api, "dave")
        expect(dave.locator("#who")).to_contain_text("dave (admin)")
        me = dave.request.get(f"{api.base}/api/me").json()
        assert me == {"name": "dave", "groups": ["ops"], "is_admin": True}
        expect(dave.locator("main")).to_contain_text("carol's shop")  # an admin sees all
        assert problems == []

        # A user of the LDAP directory, through the provider that federates it: the
        # directory's password, its group mapped to the API's.
        erin, problems = sign_in(browser, api, "erin")
        expect(erin.locator("#who")).to_contain_text("erin")
        me = erin.request.get(f"{api.base}/api/me").json()
        assert me == {"name": "erin", "groups": ["team-a"], "is_admin": False}
        expect(erin.locator("main")).to_contain_text("carol's shop")  # team-a's
        assert problems == []

        alice, _ = sign_in(browser, api, "alice")
        expect(alice.locator("body")).to_contain_text("a user named 'alice' exists here already")

        # A public client: no secret, the code exchanged with the PKCE verifier alone.
        carol, problems = sign_in(browser, sso.public, "carol")
        expect(carol.locator("#who")).to_contain_text("carol")
        me = carol.request.get(f"{sso.public.base}/api/me").json()
        assert me == {"name": "carol", "groups": ["team-a"], "is_admin": False}
        assert problems == []


def test_a_callback_not_started_here_is_refused(sso: Sso) -> None:
    api, keycloak = sso.api, sso.keycloak
    with httpx.Client(base_url=api.base) as c:
        start = c.get("/ui/oidc/login")
        assert start.status_code == 302
        to = urlsplit(start.headers["location"])
        query = parse_qs(to.query)
        assert f"{to.scheme}://{to.netloc}{to.path}".startswith(keycloak.issuer)
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{api.base}/ui/oidc/callback"]
        assert {"state", "nonce", "code_challenge"} <= set(query)
        pending = start.headers["set-cookie"]
        assert {"HttpOnly", "SameSite=lax", "Path=/ui/oidc"} <= {
            p.strip() for p in pending.split(";")
        }
        forged = c.get("/ui/oidc/callback", params={"code": "x", "state": "not-the-state"})
        assert forged.status_code == 422
        assert "not started here" in forged.json()["error"]["message"]
        c.cookies.clear()
        alone = c.get("/ui/oidc/callback", params={"code": "x", "state": query["state"][0]})
        assert alone.status_code == 422
        refused = c.get("/ui/oidc/callback", params={"error": "access_denied"})
        assert refused.json()["error"]["message"].endswith("refused the login: access_denied")
