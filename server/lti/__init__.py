"""LTI 1.3 tool side (docs/LMS.md): registered platforms, the OIDC login and resource-link
launch, the tool's key set. Protocol checks use PyJWT; platforms' keys come through the
bounded key set cache (server/accounts/jwks.py)."""
