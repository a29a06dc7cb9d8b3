"""Tests of server/recordings: the lifecycle with a protocol-level worker, the claim, real media end to end."""
