"""Tests of server/calls: sessions, signaling, controls, attendance, ICE servers, real WebRTC."""
