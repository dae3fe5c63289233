"""A realm of the real Keycloak for single sign-on tests: the API's client (confidential, PKCE
required, groups in its tokens by name), users in groups, and (optionally) an LDAP directory
federated, whose users and groups Keycloak reads from it."""

from __future__ import annotations

from typing import Any

CLIENT_ID, CLIENT_SECRET = "shibuya", "not-a-real-secret-but-long-enough-0123456789"
PUBLIC_CLIENT_ID = "shibuya-public"  # a client without a secret: PKCE alone
#: user -> (password, Keycloak groups)
USERS = {"carol": ("carol-pw", ["team-a"]), "dave": ("dave-pw", ["team-b", "shibuya-admins"])}


def realm(
    redirect_uri: str, users: dict[str, tuple[str, list[str]]] | None = None,
    public_redirect_uri: str | None = None,
) -> dict[str, Any]:  # fmt: skip
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
        "clients": [client(CLIENT_ID, redirect_uri, CLIENT_SECRET)] + (
            [client(PUBLIC_CLIENT_ID, public_redirect_uri)] if public_redirect_uri else []),
    }  # fmt: skip


#: LDAP user -> (password, LDAP groups): they exist in the directory only.
LDAP_USERS = {"erin": ("erin-pw", ["ldap-testers"])}


def client(client_id: str, redirect_uri: str, secret: str | None = None) -> dict[str, Any]:
    """A client of the API: confidential with ``secret``, else public; PKCE required; groups in
    its tokens by name."""
    return {
        "clientId": client_id, "enabled": True, "publicClient": secret is None,
        **({"secret": secret} if secret else {}), "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False, "redirectUris": [redirect_uri],
        "attributes": {"pkce.code.challenge.method": "S256"},
        "protocolMappers": [{
            "name": "groups", "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {"full.path": "false", "id.token.claim": "true",
                       "access.token.claim": "true", "userinfo.token.claim": "true",
                       "claim.name": "groups"},
        }],
    }  # fmt: skip


def _mapper(name: str, provider: str, **config: str) -> dict[str, Any]:
    settings = {k.replace("_", "."): [v] for k, v in config.items()}
    return {"name": name, "providerId": provider, "config": settings}


def ldap_federation(url: str, base_dn: str, bind_dn: str, bind_password: str) -> dict[str, Any]:
    """The realm's ``components``: the LDAP directory at ``url`` federated read-only — its
    users (``uid``) log in with their directory password, its ``groupOfNames`` become their
    groups (and so the ``groups`` claim)."""
    attribute = "user-attribute-ldap-mapper"
    mappers = [
        _mapper("username", attribute, ldap_attribute="uid", user_model_attribute="username",
                read_only="true", is_mandatory_in_ldap="true"),
        _mapper("email", attribute, ldap_attribute="mail", user_model_attribute="email",
                read_only="true", is_mandatory_in_ldap="false"),
        _mapper("first name", attribute, ldap_attribute="cn", user_model_attribute="firstName",
                read_only="true", is_mandatory_in_ldap="true"),
        _mapper("last name", attribute, ldap_attribute="sn", user_model_attribute="lastName",
                read_only="true", is_mandatory_in_ldap="true"),
        {"name": "groups", "providerId": "group-ldap-mapper", "config": {
            "groups.dn": [f"ou=groups,{base_dn}"], "group.name.ldap.attribute": ["cn"],
            "group.object.classes": ["groupOfNames"], "membership.ldap.attribute": ["member"],
            "membership.attribute.type": ["DN"], "membership.user.ldap.attribute": ["uid"],
            "mode": ["READ_ONLY"], "groups.path": ["/"], "preserve.group.inheritance": ["false"],
            "user.roles.retrieve.strategy": ["LOAD_GROUPS_BY_MEMBER_ATTRIBUTE"],
            "ignore.missing.groups": ["false"], "drop.non.existing.groups.during.sync": ["false"],
        }},
    ]  # fmt: skip
    config = {
        "enabled": "true", "priority": "0", "vendor": "other", "connectionUrl": url,
        "authType": "simple", "bindDn": bind_dn, "bindCredential": bind_password,
        "usersDn": f"ou=people,{base_dn}", "usernameLDAPAttribute": "uid",
        "rdnLDAPAttribute": "uid", "uuidLDAPAttribute": "entryUUID",
        "userObjectClasses": "inetOrgPerson", "searchScope": "1", "editMode": "READ_ONLY",
        "importEnabled": "true", "syncRegistrations": "false", "pagination": "false",
        "trustEmail": "true", "useTruststoreSpi": "never", "connectionPooling": "false",
        "cachePolicy": "NO_CACHE", "fullSyncPeriod": "-1", "changedSyncPeriod": "-1",
    }  # fmt: skip
    return {"org.keycloak.storage.UserStorageProvider": [{
        "name": "directory", "providerId": "ldap",
        "subComponents": {"org.keycloak.storage.ldap.mappers.LDAPStorageMapper": mappers},
        "config": {k: [v] for k, v in config.items()},
    }]}  # fmt: skip
