"""Small parts of the LTI tool: the role mapping, names, origins, the tool's key file."""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from server.lti import keys
from server.lti.claims import display_name, room_role
from server.lti.origins import default_frame_origins, origin_of

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


def test_role_mapping():
    assert room_role([LIS + "membership#Instructor"]) == "instructor"
    assert room_role([LIS + "membership/Instructor#TeachingAssistant"]) == "instructor"
    assert room_role([LIS + "institution/person#Administrator", LIS + "membership#Learner"]) == "instructor"
    assert room_role([LIS + "system/person#Administrator"]) == "instructor"
    assert room_role(["Instructor"]) == "instructor"  # the short form LTI 1.3 allows for context roles
    assert room_role([LIS + "membership#Learner"]) == "student"
    assert room_role([LIS + "membership#Mentor", LIS + "membership#ContentDeveloper"]) == "student"
    assert room_role([LIS + "institution/person#Instructor"]) == "instructor"
    assert room_role([]) == room_role(None) == room_role("Instructor") == "student"  # not a list
    assert room_role([LIS + "membership#InstructorX", "NotInstructor"]) == "student"


def test_display_name():
    assert display_name({"name": "  Ada  "}) == "Ada"
    assert display_name({"given_name": "Ada", "family_name": "Lovelace"}) == "Ada Lovelace"
    assert display_name({}) == "LMS user" and display_name({"name": " "}, None) is None
    assert len(display_name({"name": "x" * 500})) == 128


def test_origins():
    assert origin_of("https://Moodle.Example.edu/mod/lti/auth.php") == "https://moodle.example.edu"
    assert origin_of("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for bad in ("javascript:alert(1)", "https://a.b; script-src *", "ftp://x", "", "https://"):
        assert origin_of(bad) is None, bad
    assert default_frame_origins("https://canvas.instructure.com", "https://sso.canvaslms.com/api/lti/x") == [
        "https://canvas.instructure.com", "https://sso.canvaslms.com"]


def test_tool_key_is_made_once_private_and_kept(tmp_path):
    with ThreadPoolExecutor(4) as pool:  # several processes starting at once agree on one key
        made = list(pool.map(lambda _: keys.jwks(keys.load_or_create(tmp_path)), range(4)))
    assert all(m == made[0] for m in made)
    path = tmp_path / keys.KEY_FILE
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert keys.jwks(keys.load_or_create(tmp_path)) == made[0]  # a restart keeps it
    [jwk] = made[0]["keys"]
    assert {"kty", "n", "e", "kid", "alg", "use"} <= set(jwk) and jwk["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "a private member is published"
    assert not [p for p in tmp_path.iterdir() if p.name != keys.KEY_FILE], "a temporary file was left"
    json.dumps(made[0])
