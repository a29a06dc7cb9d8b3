"""Tests of server/sfu: the Janus API protocol, the client and rooms against a real Janus in a private network namespace."""
