"""The HTML the LMS's frame (or window) shows: the hand-off page after a launch and the error
page. No inline script: the hand-off page loads ``/lti-launch.js``, which opens the web client
at ``/#lti-token=<token>&room=<id>``; ``web/js/lti-handoff.js`` keeps the token as api.js does
(localStorage, or memory when a cross-site frame is refused storage) and routes to
``#/rooms/<id>``. The session token is never a cookie; the only cookie is the login's state
(server/lti/binding.py, partitioned, so third-party-cookie blocking does not take it).

With the LMS's platform storage (a login naming ``lti_storage_target``), ``/lti-storage.js``
puts the state there at login (:func:`storage_login_page`), and a launch whose browser did not
send the state cookie answers its page wrapped in ``#podium-lti-check``: hidden, and handed
off only once the script found the same state in the LMS's storage of this browser."""
from __future__ import annotations

from html import escape

from server.lti.binding import StorageCheck

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;margin:2rem;color:#222}}h1{{font-size:1.3rem}}</style>
</head><body>{body}</body></html>
"""


def csp(frame_origins: list[str], script: bool, form_action: str = "'none'") -> str:
    ancestors = " ".join(["'self'", *frame_origins])
    scripts = "script-src 'self'" if script else "script-src 'none'"
    return (f"default-src 'none'; {scripts}; style-src 'unsafe-inline'; base-uri 'none'; "
            f"form-action {form_action}; frame-ancestors {ancestors}")


def _storage_attrs(check: StorageCheck) -> str:
    return (f'data-target="{escape(check.target)}" data-origin="{escape(check.origin)}" '
            f'data-state="{escape(check.state)}"')


def _checked(body: str, check: StorageCheck | None) -> str:
    """``body``, or (``check``) ``body`` hidden until the state is found in the LMS's storage."""
    if check is None:
        return body
    return (f'<div id="podium-lti-check" {_storage_attrs(check)} hidden>{body}</div>'
            '<p id="podium-lti-checking">Checking that this launch started in this browser…</p>'
            '<script src="/lti-storage.js"></script>')


def storage_login_page(auth_url: str, check: StorageCheck) -> str:
    """The login step with the LMS's platform storage: ``/lti-storage.js`` puts the state there,
    then goes on to the platform's authorization endpoint (also when the storage does not
    answer: the state cookie may still do)."""
    body = (f'<div id="podium-lti-login" {_storage_attrs(check)} data-next="{escape(auth_url)}">'
            '<p>Signing in to Podium…</p></div><script src="/lti-storage.js"></script>'
            '<noscript><p>Podium needs JavaScript.</p></noscript>')
    return _PAGE.format(title="Podium", body=body)


def handoff_page(token: str, room_id: int, recording_id: int | None = None,
                 check: StorageCheck | None = None) -> str:
    recording = f' data-recording="{recording_id}"' if recording_id is not None else ""
    body = _checked(f'<div id="podium-lti" data-token="{escape(token)}" data-room="{room_id}"{recording}>'
                    '<p>Opening the course room in Podium…</p></div>', check)
    body += '<script src="/lti-launch.js"></script><noscript><p>Podium needs JavaScript.</p></noscript>'
    return _PAGE.format(title="Podium", body=body)


def error_page(reason: str) -> str:
    body = ("<h1>Podium could not open this course</h1>"
            f'<p id="lti-error">{escape(reason)}</p>'
            "<p>Go back to the course in your learning platform and open Podium again. If it keeps "
            "failing, tell the course's administrator what this page says.</p>")
    return _PAGE.format(title="Podium: launch refused", body=body)


def deep_link_page(selection: str, room_name: str, recordings: list[tuple[int, str]],
                   check: StorageCheck | None = None) -> str:
    """The instructor's pick: the live class room, or one of its ready recordings."""
    options = [f'<label><input type="radio" name="pick" value="room" checked data-testid="pick-room"> '
               f'<b>Live class room</b>: {escape(room_name)}</label>']
    options += [f'<label><input type="radio" name="pick" value="recording:{rid}" data-testid="pick-recording"> '
                f'Recording: {escape(label)}</label>' for rid, label in recordings]
    if not recordings:
        options.append('<p class="muted">No ready recordings of this course yet.</p>')
    body = ("<h1>Add Podium to this course</h1>"
            "<p>Pick what the link in the course opens.</p>"
            '<form id="podium-dl-pick" method="post" action="/lti/deep-link">'
            f'<input type="hidden" name="selection" value="{escape(selection)}">'
            '<fieldset style="border:0;padding:0;display:grid;gap:.6rem">' + "".join(options) + "</fieldset>"
            '<p><button type="submit" data-testid="deep-link-add">Add to the course</button></p></form>')
    if check is not None:
        body = _checked(body, check) + '<script src="/lti-launch.js"></script>'
    return _PAGE.format(title="Podium: add to the course", body=body)


def deep_link_return_page(return_url: str, token: str) -> str:
    """The form that carries the signed LtiDeepLinkingResponse back to the LMS
    (``/lti-autopost.js`` submits it; without JavaScript the button does)."""
    body = (f'<form id="podium-autopost" method="post" action="{escape(return_url)}">'
            f'<input type="hidden" name="JWT" value="{escape(token)}">'
            "<p>Returning to the course…</p><noscript><button type=\"submit\">Continue</button></noscript></form>"
            '<script src="/lti-autopost.js"></script>')
    return _PAGE.format(title="Podium: returning to the course", body=body)
