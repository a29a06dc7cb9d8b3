"""Chat: messages (send, history, sync, edits, reactions, reads), presence and typing, search."""
