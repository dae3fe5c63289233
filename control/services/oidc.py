"""Single sign-on for the web UI: OpenID Connect's authorization code flow with PKCE.

The login sends the browser to the provider with a fresh ``state``, ``nonce`` and PKCE verifier,
which the browser keeps meanwhile in an HttpOnly cookie of its own (an attacker who cannot set
the victim's cookies cannot complete a login for them; a victim who edits theirs gains nothing).
The callback exchanges the code (with the verifier, and the client's secret if it has one),
checks the ID token — signature against the provider's published keys, issuer, audience, expiry,
nonce — and maps its claims to a user of this API: found by the provider's subject, created at
the first login, their groups and admin flag the provider's at each login.

joserfc checks the ID token. The two requests around it (the authorization URL, the code's
exchange) are a few lines of httpx: Authlib, which does them too, deprecates its httpx client in
the version pinned here.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from control.db.models import Group, Membership, User
from control.errors import ConflictError, InvalidError, UnavailableError
from control.services.auth import Caller
from control.settings import OidcSettings

#: How long the provider's metadata and keys are kept (an unknown key id fetches them again).
METADATA_TTL_S = 600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


@dataclass(frozen=True)
class Pending:
    """A login under way: what the browser keeps until the provider sends it back."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> Pending:
        return cls(*(secrets.token_urlsafe(32) for _ in range(3)))

    def dump(self) -> str:
        return f"{self.state}.{self.nonce}.{self.verifier}"

    @classmethod
    def load(cls, raw: str) -> Pending | None:
        parts = raw.split(".")
        return cls(*parts) if len(parts) == 3 and all(parts) else None


@dataclass(frozen=True)
class Identity:
    subject: str
    """``<issuer> <sub>``: who the provider says it is, for good."""
    name: str
    groups: frozenset[str]
    admin: bool


class Provider:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.settings.issuer and self.settings.client_id)

    async def metadata(self, refresh: bool = False) -> dict[str, Any]:
        """The provider's discovery document and keys, fetched at most every ten minutes."""
        if self._metadata is None or refresh or time.monotonic() - self._fetched > METADATA_TTL_S:
            issuer = self.settings.issuer.rstrip("/")
            try:
                async with httpx.AsyncClient(timeout=10) as c:
                    meta = (await c.get(f"{issuer}/.well-known/openid-configuration")).json()
                    keys = KeySet.import_key_set((await c.get(meta["jwks_uri"])).json())
            except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
                raise UnavailableError(f"the identity provider does not answer: {exc!r}") from exc
            if meta.get("issuer", "").rstrip("/") != issuer:
                raise UnavailableError(f"the provider at {issuer} names another issuer")
            self._metadata, self._keys, self._fetched = meta, keys, time.monotonic()
        return self._metadata

    async def authorization_url(self, redirect_uri: str) -> tuple[str, Pending]:
        meta = await self.metadata()
        pending = Pending.new()
        challenge = hashlib.sha256(pending.verifier.encode()).digest()
        query = urlencode({
            "response_type": "code", "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri, "scope": self.settings.scopes,
            "state": pending.state, "nonce": pending.nonce, "code_challenge_method": "S256",
            "code_challenge": base64.urlsafe_b64encode(challenge).rstrip(b"=").decode(),
        })  # fmt: skip
        endpoint = str(meta["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", pending

    async def identity(self, code: str, pending: Pending, redirect_uri: str) -> Identity:
        """The user the provider vouches for, from the code it sent back."""
        meta = await self.metadata()
        s = self.settings
        secret = s.client_secret.get_secret_value()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": pending.verifier}  # fmt: skip
        auth = None
        if secret:  # client_secret_basic: id and secret form-encoded first (RFC 6749, 2.3.1)
            auth = httpx.BasicAuth(quote(s.client_id, safe=""), quote(secret, safe=""))
        else:
            form["client_id"] = s.client_id
        async with httpx.AsyncClient(timeout=10, auth=auth) as c:
            try:
                answer = await c.post(meta["token_endpoint"], data=form)
                token = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise UnavailableError(f"the identity provider does not answer: {exc!r}") from exc
            if answer.status_code != 200 or "id_token" not in token:
                why = str(
                    token.get("error_description") or token.get("error") or answer.status_code
                )
                raise InvalidError(f"the provider refused the login's code: {why[:200]}")
            claims = await self._verified(str(token["id_token"]), pending.nonce)
            if s.groups_claim not in claims and meta.get("userinfo_endpoint"):
                bearer = {"Authorization": f"Bearer {token.get('access_token', '')}"}
                info = (await c.get(meta["userinfo_endpoint"], headers=bearer, auth=None)).json()
                if isinstance(info, dict) and info.get("sub") == claims["sub"]:
                    claims = {**info, **claims}
        return self._identity(claims)

    async def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        s = self.settings
        try:
            try:
                assert self._keys is not None
                decoded = jwt.decode(id_token, self._keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # a key not seen yet: the provider rotated its keys
                await self.metadata(refresh=True)
                assert self._keys is not None
                decoded = jwt.decode(id_token, self._keys, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self._metadata_issuer()},
                aud={"essential": True, "value": s.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidError(f"the provider's ID token does not hold: {exc}") from exc
        return dict(decoded.claims)

    def _metadata_issuer(self) -> str:
        assert self._metadata is not None
        return str(self._metadata["issuer"])

    def _identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        name = claims.get(s.username_claim)
        if not isinstance(name, str) or not name or len(name) > 100:
            raise InvalidError(f"the ID token has no usable {s.username_claim!r} claim")
        raw = claims.get(s.groups_claim) or []
        theirs = {g.lstrip("/") for g in (raw if isinstance(raw, list) else [raw])
                  if isinstance(g, str) and 0 < len(g.lstrip("/")) <= 100}  # fmt: skip
        ours = {s.groups[g] for g in theirs if g in s.groups} if s.groups else theirs
        admin = bool(theirs & {g.lstrip("/") for g in s.admin_groups})
        subject = f"{self._metadata_issuer()} {claims['sub']}"
        return Identity(subject=subject, name=name, groups=frozenset(ours), admin=admin)


def sign_in(session: Session, who: Identity) -> Caller:
    """The provider's user as a user of this API: created at the first login; their groups (any
    missing one created) and admin flag set to the provider's."""
    user = session.scalar(select(User).where(User.oidc_subject == who.subject))
    if user is None:
        if session.scalar(select(User.id).where(User.name == who.name)) is not None:
            raise ConflictError(f"a user named {who.name!r} exists here already, not from this "
                                "identity provider: an admin must rename one of them")  # fmt: skip
        user = User(name=who.name, oidc_subject=who.subject)
        session.add(user)
    user.is_admin = who.admin
    session.flush()
    groups = []
    for name in sorted(who.groups):
        group = session.scalar(select(Group).where(Group.name == name))
        if group is None:
            group = Group(name=name)
            session.add(group)
            session.flush()
        groups.append(group.id)
    session.execute(delete(Membership).where(Membership.user_id == user.id))
    session.add_all(Membership(user_id=user.id, group_id=g) for g in groups)
    session.flush()
    return Caller(user_id=user.id, name=user.name, groups=frozenset(groups), is_admin=user.is_admin)
