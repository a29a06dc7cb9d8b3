"""Pure parts of the LTI Advantage services: the NRPS next-page link, the AGS scores URL."""
from __future__ import annotations

from tornado.httputil import HTTPHeaders

from server.lti.grades import scores_url
from server.lti.services import Reply


def test_scores_url_appends_to_the_path_and_keeps_the_query():
    assert scores_url("https://lms.example/ags/c/lineitems/7?type_id=3") == "https://lms.example/ags/c/lineitems/7/scores?type_id=3"
    assert scores_url("https://lms.example/li/7/") == "https://lms.example/li/7/scores"


def test_next_link_of_a_membership_page():
    def reply(*links: str) -> Reply:
        headers = HTTPHeaders()
        for link in links:
            headers.add("Link", link)
        return Reply(200, headers, None)

    assert reply('<https://lms/m?page=2>; rel="next"').next_link() == "https://lms/m?page=2"
    assert reply('<https://lms/m?p=1>; rel="prev", <https://lms/m?p=3>; rel=next').next_link() == "https://lms/m?p=3"
    assert reply('<https://lms/d>; rel="differences"').next_link() is None
    assert reply().next_link() is None
