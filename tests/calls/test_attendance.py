"""Attendance of a session (server/calls/attendance.py; PROTOCOL §3): intervals per device and
reconnect, merged totals and percent, students see only themselves, CSV for instructors."""
from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime

from tests.calls.helpers import SDP, call_room, calls_settle, joined, parse_ts, union_seconds  # noqa: F401  (autouse fixture)


async def test_attendance_intervals_totals_percent_and_csv(server):
    """GET /api/sessions/{id}/attendance lists per-user intervals (a reconnect is a second
    interval), total_s and percent of the session; students see only themselves; CSV is for
    instructors (students 403), one row per interval with the documented columns."""
    session, [(ana, a_tok), (ben, b_tok), (cat, c_tok)] = await call_room(server, "ana", "ben", "cat")
    _, out_tok = await server.user("outsider")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    await asyncio.sleep(0.4)
    b.close()  # ben's connection drops ...
    await a.next_event("call.participant_left")
    await asyncio.sleep(0.3)
    b, _ = await joined(server, b_tok, session)  # ... and he reconnects
    await asyncio.sleep(0.4)
    await a.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    assert status == 200 and body["session"]["id"] == session
    ended = parse_ts(body["session"]["ended_at"])
    span = (ended - parse_ts(body["session"]["started_at"])).total_seconds()
    rows = {r["user"]["id"]: r for r in body["attendees"]}
    # Every member is listed; cat never joined: absent, 0 min.
    assert set(rows) == {ana["id"], ben["id"], cat["id"]}
    assert rows[cat["id"]] == {**rows[cat["id"]], "intervals": [], "total_s": 0, "percent": 0, "absent": True}
    assert rows[ben["id"]]["absent"] is False
    del rows[cat["id"]]
    assert rows[ben["id"]]["user"]["username"] == "ben"
    ben_iv = rows[ben["id"]]["intervals"]
    assert len(ben_iv) == 2 and all(i["left_at"] for i in ben_iv)
    assert parse_ts(ben_iv[0]["left_at"]) < parse_ts(ben_iv[1]["joined_at"])
    for uid, r in rows.items():
        expected = union_seconds(r["intervals"], ended)
        assert abs(r["total_s"] - expected) <= 0.11, (uid, r["total_s"], expected)
        assert abs(r["percent"] - 100 * expected / span) <= 1.0, (uid, r["percent"], span)
    assert rows[ben["id"]]["total_s"] < rows[ana["id"]]["total_s"]
    assert 0.7 <= rows[ben["id"]]["total_s"] <= 3.0  # two stays of >= 0.4 s each
    # Students see only their own row; non-members are refused.
    status, mine = await server.http("GET", f"/api/sessions/{session}/attendance", b_tok)
    assert status == 200 and [r["user"]["id"] for r in mine["attendees"]] == [ben["id"]]
    status, none = await server.http("GET", f"/api/sessions/{session}/attendance", c_tok)
    assert status == 200 and [(r["user"]["id"], r["absent"]) for r in none["attendees"]] == [(cat["id"], True)]
    status, _ = await server.http("GET", f"/api/sessions/{session}/attendance", out_tok)
    assert status == 403
    status, _ = await server.http("GET", "/api/sessions/424242/attendance", a_tok)
    assert status == 404
    status, _ = await server.http("GET", f"/api/sessions/{session}/attendance")
    assert status == 401
    # CSV
    status, raw = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv", a_tok)
    assert status == 200, raw
    table = list(csv.reader(io.StringIO(raw.decode())))
    assert table[0] == ["user_id", "username", "display_name", "joined_at", "left_at", "interval_s",
                        "total_s", "percent", "total_min", "present", "time_zone"]
    by_user: dict[str, list[list[str]]] = {}
    for row in table[1:]:
        by_user.setdefault(row[0], []).append(row)
    assert {k: len(v) for k, v in by_user.items()} == {ana["id"]: 1, ben["id"]: 2, cat["id"]: 1}
    assert by_user[cat["id"]][0][3:] == ["", "", "0", "0.0", "0.0", "0.0", "no", "UTC"]

    def utc(ts: str) -> str:  # the wire's Z time as the CSV writes it in UTC
        return parse_ts(ts).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for row, iv in zip(by_user[ben["id"]], ben_iv):
        assert row[1:5] == ["ben", "Ben", utc(iv["joined_at"]), utc(iv["left_at"])]
        assert row[9:] == ["yes", "UTC"] and float(row[8]) == round(rows[ben["id"]]["total_s"] / 60, 1)
        secs = (parse_ts(iv["left_at"]) - parse_ts(iv["joined_at"])).total_seconds()
        assert abs(float(row[5]) - secs) <= 0.11
        assert float(row[6]) == rows[ben["id"]]["total_s"] and float(row[7]) == rows[ben["id"]]["percent"]
    status, err = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv", b_tok)
    assert status == 403 and err["error"]["code"] == "forbidden"
    # In the teacher's time zone (December: Berlin is UTC+1), named in its column.
    status, raw = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv&tz=Europe/Berlin", a_tok)
    berlin = [r for r in csv.reader(io.StringIO(raw.decode())) if r[0] == ben["id"]]
    assert berlin[0][3].endswith("+01:00") and berlin[0][10] == "Europe/Berlin"
    assert berlin[0][3][11:13] == f"{(parse_ts(ben_iv[0]['joined_at']).hour + 1) % 24:02d}"
    status, err = await server.http("GET", f"/api/sessions/{session}/attendance?format=csv&tz=Mars/Olympus", a_tok)
    assert status == 400


async def test_two_devices_are_two_peers_and_not_double_counted(server):
    """One user on two devices is two peers (two peer_ids, both listed, each reachable by
    signals on its own) and two intervals, but overlapping time counts once in total_s."""
    session, [(_, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    a, ack_a = await joined(server, a_tok, session)
    phone, ack_phone = await joined(server, b_tok, session)
    await asyncio.sleep(0.3)
    laptop, ack_laptop = await joined(server, b_tok, session)
    assert ack_phone["peer_id"] != ack_laptop["peer_id"]
    assert {p["peer_id"] for p in ack_laptop["participants"]} == {ack_a["peer_id"], ack_phone["peer_id"]}
    for dev, ack in ((phone, ack_phone), (laptop, ack_laptop)):
        await a.request("rtc.offer", session=session, to=ack["peer_id"], sdp=SDP, negotiation_id=ack["peer_id"])
    assert (await phone.next_event("rtc.offer"))["negotiation_id"] == ack_phone["peer_id"]
    assert (await laptop.next_event("rtc.offer"))["negotiation_id"] == ack_laptop["peer_id"]
    assert await phone.no_event("rtc.offer", 0.1) and await laptop.no_event("rtc.offer", 0.05)
    # The two devices can signal each other too (they are two peers of one call).
    await phone.request("rtc.offer", session=session, to=ack_laptop["peer_id"], sdp=SDP, negotiation_id="self")
    assert (await laptop.next_event("rtc.offer"))["from"] == ack_phone["peer_id"]
    await asyncio.sleep(0.5)
    await phone.request("call.leave", session=session)
    await asyncio.sleep(0.3)
    await laptop.request("call.leave", session=session)
    await a.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", a_tok)
    (row,) = [r for r in body["attendees"] if r["user"]["id"] == ben["id"]]
    assert len(row["intervals"]) == 2
    spans = [(parse_ts(i["joined_at"]), parse_ts(i["left_at"])) for i in row["intervals"]]
    summed = sum((e - s).total_seconds() for s, e in spans)
    union = union_seconds(row["intervals"], datetime.max)
    assert summed - union >= 0.25  # they really overlapped ...
    assert abs(row["total_s"] - union) <= 0.11, (row["total_s"], union, summed)  # ... and count once
