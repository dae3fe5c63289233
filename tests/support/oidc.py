"""A realm of the real Keycloak for single sign-on tests: the API's client (confidential, PKCE
required, groups in its tokens by name) and users in groups."""

from __future__ import annotations

from typing import Any

CLIENT_ID, CLIENT_SECRET = "shibuya", "not-a-real-secret-but-long-enough-0123456789"
#: user -> (password, Keycloak groups)
USERS = {"carol": ("carol-pw", ["team-a"]), "dave": ("dave-pw", ["team-b", "shibuya-admins"])}


def realm(
    redirect_uri: str, users: dict[str, tuple[str, list[str]]] | None = None
) -> dict[str, Any]:
    users = USERS if users is None else users
    groups = sorted({g for _, gs in users.values() for g in gs})
    return {
        "realm": "shibuya", "enabled": True, "sslRequired": "none",
        "groups": [{"name": g} for g in groups],
        "users": [{
            "username": name, "enabled": True, "email": f"{name}@example.test",
            "emailVerified": True, "firstName": name.title(), "lastName": "Tester",
            "credentials": [{"type": "password", "value": password, "temporary": False}],
            "groups": [f"/{g}" for g in gs],
        } for name, (password, gs) in users.items()],
        "clients": [{
            "clientId": CLIENT_ID, "enabled": True, "publicClient": False,
            "secret": CLIENT_SECRET, "standardFlowEnabled": True,
            "directAccessGrantsEnabled": False, "redirectUris": [redirect_uri],
            "attributes": {"pkce.code.challenge.method": "S256"},
            "protocolMappers": [{
                "name": "groups", "protocol": "openid-connect",
                "protocolMapper": "oidc-group-membership-mapper",
                "config": {"full.path": "false", "id.token.claim": "true",
                           "access.token.claim": "true", "userinfo.token.claim": "true",
                           "claim.name": "groups"},
            }],
        }],
    }  # fmt: skip
