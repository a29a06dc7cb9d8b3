"""Podium media worker: joins calls as a WebRTC peer and records them (not built yet)."""
