"""Tests of server/realtime: transport, dispatch, notices, registry, ordering."""
