"""Recordings of calls: the lifecycle with every state transition, the media-worker pool, and the library of finished recordings."""
