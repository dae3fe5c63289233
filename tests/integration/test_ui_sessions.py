"""The web UI's sessions and pages on the real server: a token is exchanged once for an HttpOnly,
SameSite=Strict cookie; every change made with the cookie needs the session's CSRF token;
logging out revokes the session; sessions expire; the pages come with a Content-Security-Policy
of this origin only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.api import ApiServer, start_api
from tests.support.waiting import wait_until

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@contextmanager
def login(api: ApiServer, who: str) -> Iterator[tuple[httpx.Client, str, httpx.Response]]:
    """A client with only ``who``'s session cookie; its CSRF token; the login's answer."""
    with httpx.Client(base_url=api.base) as c:
        r = c.post("/ui/login", json={"token": api.tokens[who]})
        assert r.status_code == 200, r.text
        yield c, r.json()["csrf"], r


def test_a_token_is_exchanged_for_a_cookie_and_changes_need_the_csrf_token(
    api: ApiServer,
) -> None:
    with login(api, "alice") as (c, csrf, r):
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("shibuya_session=shb_")
        assert {"HttpOnly", "Path=/", "SameSite=strict", "Max-Age=43200"} <= {
            p.strip() for p in cookie.split(";")
        }
        assert "Secure" not in cookie  # plain HTTP here (AUTH__SECURE_COOKIES=auto)
        assert api.tokens["alice"] not in r.text
        assert r.json() == {
            "name": "alice",
            "is_admin": False,
            "csrf": csrf,
            "auth": "tokens",
            "sso": False,
        }
        assert c.get("/ui/session").json()["csrf"] == csrf
        assert c.get("/api/me").json()["name"] == "alice"
        body = {"name": "ui-project", "group": "team-a"}
        for headers in ({}, {"X-CSRF-Token": "0" * 32}):
            refused = c.post("/api/projects", json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["message"] == (
                "a change made with a session needs its X-CSRF-Token"
            )
        created = c.post("/api/projects", json=body, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201, created.text
        assert c.delete(f"/api/projects/{created.json()['id']}").status_code == 403
        ok = c.delete(f"/api/projects/{created.json()['id']}", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 204
        # Another user's session: the API's own rules (bob sees no project of team-a).
        with login(api, "bob") as (bob, bob_csrf, _):
            assert bob_csrf != csrf
            assert bob.get(f"/api/projects/{created.json()['id']}").status_code == 404
        assert c.post("/ui/logout").status_code == 403
        out = c.post("/ui/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert 'shibuya_session=""' in out.headers["set-cookie"]
        c.cookies.set("shibuya_session", r.cookies["shibuya_session"])
        assert c.get("/api/me").status_code == 401  # revoked (this replica forgot it at once)


def test_no_session_without_a_valid_token(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base) as c:
        bad = c.post("/ui/login", json={"token": "shb_nope"})
        assert bad.status_code == 401
        assert "set-cookie" not in bad.headers
        assert c.post("/ui/login", json={"token": ""}).json()["error"]["code"] == "invalid"
        nobody = {"name": None, "is_admin": False, "csrf": "", "auth": "tokens", "sso": False}
        assert c.get("/ui/session").json() == nobody
        c.cookies.set("shibuya_session", "shb_forged")
        assert c.get("/ui/session").json() == nobody
        assert c.get("/api/me").status_code == 401


def test_pages_are_served_with_a_content_security_policy(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base) as c:
        home = c.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/ui/")
        for path, kind in (("/ui/", "text/html"), ("/ui/static/app.js", "javascript"),
                           ("/ui/static/pages/run.js", "javascript"),
                           ("/ui/vendor/uPlot.iife.min.js", "javascript")):  # fmt: skip
            r = c.get(path)
            assert r.status_code == 200, path
            assert kind in r.headers["content-type"]
            assert r.headers["content-security-policy"] == CSP
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
        assert c.get("/ui/static/../routes/ui.py").status_code == 404
        assert c.get("/ui/static/%2e%2e/%2e%2e/settings.py").status_code == 404


def test_sessions_expire_and_cookies_can_be_secure_always(tmp_path: Path) -> None:
    api = start_api(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", AUTH__SESSION_HOURS="0.0005",
                    AUTH__CACHE_S="0", AUTH__SECURE_COOKIES="always")  # fmt: skip
    try:
        with login(api, "alice") as (c, _, r):
            assert "Secure" in {p.strip() for p in r.headers["set-cookie"].split(";")}
            c.cookies.set("shibuya_session", r.cookies["shibuya_session"])  # httpx keeps
            assert c.get("/api/me").status_code == 200  # Secure ones for HTTPS only
            wait_until("the session to expire (1.8 s)",
                       lambda: c.get("/api/me").status_code == 401, 30)  # fmt: skip
    finally:
        api.stop()
