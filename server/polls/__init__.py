"""Polls and quick quizzes in a room (issue 16.1; docs/PROTOCOL-ADDITIONS.md "Polls")."""
