"""Tests of the server process as a whole and its top-level modules: config, CLI, migrations, metrics, logs, shutdown, crash recovery."""
