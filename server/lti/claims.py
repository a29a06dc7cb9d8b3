"""LTI 1.3 claim names and the role mapping (docs/LMS.md)."""
from __future__ import annotations

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
RESOURCE_LINK = LTI + "resource_link"
CUSTOM = LTI + "custom"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DEEP_LINKING_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DEEP_LINKING_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"

# The last part of a role URI (after '#', else after the last '/'): these make a room instructor.
INSTRUCTOR_ROLES = frozenset({"Instructor", "TeachingAssistant", "Administrator"})


def room_role(roles: object) -> str:
    """``instructor`` when any LTI role is Instructor, TeachingAssistant (a sub-role of
    Instructor) or Administrator (context, institution or system); otherwise ``student``
    (Learner and every other role). Only the signed roles claim counts, never a custom one."""
    if not isinstance(roles, list):
        return "student"
    for role in roles:
        if isinstance(role, str) and role.replace("#", "/").rsplit("/", 1)[-1] in INSTRUCTOR_ROLES:
            return "instructor"
    return "student"


def display_name(claims: dict, default: str | None = "LMS user") -> str | None:
    """``name``, else ``given_name family_name``, else ``default`` (the LMS shares no name)."""
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    name = (name or "").strip()[:128]
    return name or default
