"""Live calls: sessions and participants, signaling relay, classroom controls, attendance."""
