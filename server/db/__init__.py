"""Database layer: models, engine/session factory and storage functions (all SQL lives here)."""
