"""Podium media worker: a separate process that joins calls as a WebRTC peer, records every
participant without transcoding, builds the class video and uploads it (docs/RECORDING.md).
It speaks to Podium only through the public protocol (``/ws`` + HTTP) and imports nothing from
``server``: it may run on another machine."""
