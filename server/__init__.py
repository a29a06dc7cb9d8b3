"""Podium server: Tornado web process for chat, signaling, REST and static web client."""
