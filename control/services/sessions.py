"""Browser sessions of the web UI: an API token of its own, in an HttpOnly cookie.

Logging in (with an API token, or through the OpenID Connect provider) issues a new token that
expires after ``auth.session_hours``; the cookie holds it and nothing else, so a session is
checked, cached and revoked exactly as the API's bearer tokens are. Logging out revokes it.

State changes made with the cookie carry ``X-CSRF-Token``: a value derived from the session's
token (an HMAC with a fixed label), which only pages of this origin can learn
(``GET /ui/session``). A cross-site request carries neither the cookie (``SameSite=Strict``)
nor the header.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import ApiToken
from control.services.auth import Caller, issue_token, token_hash

COOKIE = "shibuya_session"
CSRF_HEADER = "X-CSRF-Token"
#: Methods that change nothing: they need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: a function of its secret token, so nothing is stored."""
    return hmac.new(session_token.encode(), b"shibuya csrf", hashlib.sha256).hexdigest()[:32]


def csrf_matches(session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session_token), presented)


def start(session: Session, who: Caller, hours: float, how: str) -> str:
    """A new session's token for ``who`` (a user of the database), valid ``hours``."""
    assert who.user_id is not None, "sessions are for users of the database"
    until = datetime.now(UTC) + timedelta(hours=hours)
    return issue_token(session, who.user_id, f"browser session ({how})", expires_at=until)


def end(session: Session, session_token: str) -> None:
    """Revoke the session's token (replicas refuse it within ``auth.cache_s``)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(session_token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
