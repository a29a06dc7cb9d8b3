"""Tests of server/chat: messages over the socket and over REST, changes, the group-commit writer."""
