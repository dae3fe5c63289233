"""Plan files: a small storage interface and its local-directory implementation."""
