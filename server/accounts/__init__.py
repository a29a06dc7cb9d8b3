"""Accounts: who a caller is (passwords, tokens, sign-up, login, the current user, user search)."""
