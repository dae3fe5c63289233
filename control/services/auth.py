"""Who is calling: bearer API tokens (stored as SHA-256), users in groups, admins.

Every endpoint but the probes depends on :func:`control.api.deps.caller`; what a caller may touch
is decided by :meth:`Caller.owns`. ``auth.mode = "none"`` (``SHIBUYA_API_AUTH__MODE=none``) is
for one person on their own machine: every request is the admin ``local``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control.db.models import ApiToken, Group, Membership, User
from control.errors import NotFoundError

TOKEN_PREFIX = "shb_"  # noqa: S105 (a marker, not a secret)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    user_id: int | None
    name: str
    groups: frozenset[int]
    is_admin: bool

    def owns(self, group_id: int) -> bool:
        """May read and change what the group owns."""
        return self.is_admin or group_id in self.groups


LOCAL = Caller(user_id=None, name="local", groups=frozenset(), is_admin=True)


def authenticate(session: Session, token: str) -> Caller | None:
    """The caller a token stands for; ``None`` for an unknown or revoked token."""
    row = session.execute(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == token_hash(token),
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > datetime.now(UTC)),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    groups = session.scalars(select(Membership.group_id).where(Membership.user_id == row.id))
    return Caller(user_id=row.id, name=row.name, groups=frozenset(groups), is_admin=row.is_admin)


class KnownCallers:
    """Who valid tokens stand for, remembered for ``ttl_s`` so most requests skip the database.

    A revoked token or a change of groups takes effect within ``ttl_s``. Unknown tokens are
    not remembered (random ones cannot fill the memory); at most ``max_entries`` are kept.
    """

    def __init__(
        self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self._known: dict[str, tuple[float, Caller]] = {}

    def get(self, token: str) -> Caller | None:
        entry = self._known.get(token_hash(token))
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def forget(self, token: str) -> None:
        """A token revoked here: refused at once by this replica (the others within ``ttl_s``)."""
        self._known.pop(token_hash(token), None)

    def remember(self, token: str, caller: Caller) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._known) >= self.max_entries:
            now = self.clock()
            self._known = {k: v for k, v in self._known.items() if v[0] > now}
            if len(self._known) >= self.max_entries:
                self._known.clear()
        self._known[token_hash(token)] = (self.clock() + self.ttl_s, caller)


def add_user(
    session: Session,
    name: str,
    groups: list[str],
    *,
    admin: bool = False,
    token_name: str = "cli",  # noqa: S107
) -> str:
    """Create a user (and any missing group), join the groups, and return a new token for it
    (shown once: only its hash is kept)."""
    user = User(name=name, is_admin=admin)
    session.add(user)
    session.flush()
    for group_name in groups:
        group = session.scalar(select(Group).where(Group.name == group_name))
        if group is None:
            group = Group(name=group_name)
            session.add(group)
            session.flush()
        session.add(Membership(user_id=user.id, group_id=group.id))
    return issue_token(session, user.id, token_name)


def user_id(session: Session, name: str) -> int:
    found = session.scalar(select(User.id).where(User.name == name))
    if found is None:
        raise NotFoundError(f"user {name!r}")
    return found


def revoke_tokens(session: Session, name: str, at: datetime) -> int:
    """Revoke every live token of the user; how many. Replicas stop accepting them within
    ``auth.cache_s``."""
    owner = user_id(session, name)
    live = select(ApiToken).where(ApiToken.user_id == owner, ApiToken.revoked_at.is_(None))
    tokens = session.scalars(live).all()
    for t in tokens:
        t.revoked_at = at
    return len(tokens)


def issue_token(
    session: Session, user_id: int, name: str, expires_at: datetime | None = None
) -> str:
    token = new_token()
    session.add(ApiToken(user_id=user_id, name=name, token_hash=token_hash(token),
                         expires_at=expires_at))  # fmt: skip
    return token
