"""Engine tokens on the real metadata database: a deploy's token serves its collection until the
purge that follows it (one issued after the purge lives on); a user's token until revoked;
neither serves another collection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from control.db.database import Database
from control.db.models import Collection, Group, Project
from control.services import engine_tokens
from control.services.auth import Caller


def test_deploy_tokens_end_with_the_purge_and_user_tokens_when_revoked(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.migrate()
    with db.transaction() as s:
        group = Group(name="team")
        s.add(group)
        s.flush()
        project = Project(name="p", group_id=group.id)
        s.add(project)
        s.flush()
        mine, other = Collection(project_id=project.id, name="a"), Collection(
            project_id=project.id, name="b")  # fmt: skip
        s.add_all([mine, other])
        s.flush()
        admin = Caller(user_id=None, name="root", groups=frozenset(), is_admin=True)
        deployed = engine_tokens.issue(s, mine.id, "deploy")
        user = engine_tokens.issue_to_user(s, admin, mine.id).token
        elsewhere = engine_tokens.issue(s, other.id, "deploy")
        purge_at = datetime.now(UTC)
        later = engine_tokens.issue(s, mine.id, "deploy")
        s.flush()
        serves = {t: engine_tokens.collection_of_token(s, t) for t in (deployed, user, later)}
        assert serves == {deployed: mine.id, user: mine.id, later: mine.id}
        assert engine_tokens.collection_of_token(s, elsewhere) == other.id
        assert engine_tokens.collection_of_token(s, "she_unknown") is None

        assert engine_tokens.revoke_deployed(s, mine.id, purge_at) == 1
        assert engine_tokens.collection_of_token(s, deployed) is None
        assert engine_tokens.collection_of_token(s, later) == mine.id  # after the purge: kept
        assert engine_tokens.collection_of_token(s, user) == mine.id
        assert engine_tokens.collection_of_token(s, elsewhere) == other.id
        assert engine_tokens.revoke_users(s, admin, mine.id) == 1
        assert engine_tokens.collection_of_token(s, user) is None
        assert engine_tokens.revoke_deployed(s, mine.id, purge_at + timedelta(hours=1)) == 1
        assert engine_tokens.collection_of_token(s, later) is None
    db.close()
