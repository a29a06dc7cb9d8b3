"""Media routing through Janus VideoRoom: the Janus API client, its rooms, and the local config."""
