"""The control plane's metadata store: SQLAlchemy 2 models, Alembic migrations, sessions."""
