"""Chat as timed text (media_worker/post/subtitles.py): chat.vtt from the class recording, and
the cue and WebVTT builders on their own (no I/O)."""
from __future__ import annotations

import io
import struct
from fractions import Fraction

import av

from media_worker.post.manifest import Chat, User
from media_worker.post.subtitles import add_chat_stream, chat_cues, mov_text_packet, vtt_escape, vtt_time, webvtt
from tests.worker.post.helpers import parse_vtt


def test_chat_vtt_parses(class_recording):
    """chat.vtt is WebVTT with one voice span per message, text escaped and recoverable."""
    path, _, _ = class_recording
    cues = parse_vtt((path / "out" / "chat.vtt").read_text())
    assert [c["voices"] for c in cues] == [
        [("Alice Teacher", "Welcome & hello <everyone>")],
        [("Bob <B>", "a --> b")],
        [("Alice Teacher", "line one\nline two")]]
    assert [(c["start"], c["end"]) for c in cues] == [(1.0, 3.5), (3.5, 6.0), (6.0, 8.0)]


def test_vtt_escape_removes_markup_and_arrows():
    """Cue text cannot open a tag, start an entity, or contain a timing arrow."""
    assert vtt_escape("a<b>&c --> d") == "a&lt;b&gt;&amp;c --&gt; d"


def chat(t: float, seq: int | None, text: str, name: str = "Ana") -> Chat:
    """A chat record as the manifest reader makes it."""
    return Chat(t, seq, User(id=name.lower(), display_name=name), text)


def spans(cues) -> list[tuple[float, float, list[str]]]:
    """(start, end, texts) per cue, rounded to the millisecond."""
    return [(round(c.start_s, 3), round(c.end_s, 3), [line.text for line in c.lines]) for c in cues]


def test_each_message_shows_for_four_seconds_or_until_the_next():
    """A cue runs SHOW_S (4 s) unless the next message comes first."""
    cues = chat_cues([chat(1.0, 1, "a"), chat(3.0, 2, "b"), chat(10.0, 3, "c")], 60.0)
    assert spans(cues) == [(1.0, 3.0, ["a"]), (3.0, 7.0, ["b"]), (10.0, 14.0, ["c"])]
    assert [c.ident for c in cues] == ["chat-1", "chat-2", "chat-3"]


def test_messages_at_the_same_instant_share_a_cue_in_seq_order():
    """Messages less than 10 ms apart are one cue with one line each, ordered by seq."""
    cues = chat_cues([chat(5.005, 8, "second", "Ben"), chat(5.0, 7, "first"), chat(5.02, 9, "apart")], 60.0)
    assert spans(cues) == [(5.0, 5.02, ["first", "second"]), (5.02, 9.02, ["apart"])]
    assert [line.speaker for line in cues[0].lines] == ["Ana", "Ben"] and cues[0].ident == "chat-7"


def test_cues_are_clipped_to_the_recording():
    """The last cue ends at the end; a message at or after the end has no cue."""
    cues = chat_cues([chat(18.0, 1, "late"), chat(20.0, 2, "after the end")], 20.0)
    assert spans(cues) == [(18.0, 20.0, ["late"])]


def test_messages_before_zero_start_at_zero_or_vanish():
    """A message before the recording's zero starts at 0, or is dropped if its cue ends by then."""
    cues = chat_cues([chat(-2.0, 1, "gone"), chat(-1.0, 2, "kept"), chat(0.5, 3, "next")], 10.0)
    assert spans(cues) == [(0.0, 0.5, ["kept"]), (0.5, 4.5, ["next"])]


def test_blank_lines_and_blank_messages_are_dropped():
    """Blank lines (which would end a WebVTT cue) and blank messages are dropped, CRLF included."""
    cues = chat_cues([chat(1.0, 1, "one\r\n\r\n  \ntwo\rthree"), chat(2.0, 2, " \n "), chat(9.0, 3, "x")], 60.0)
    assert spans(cues) == [(1.0, 5.0, ["one\ntwo\nthree"]), (9.0, 13.0, ["x"])]


def test_webvtt_document_shape():
    """chat.vtt is a header, then per cue its id, timing and one escaped voice span per message."""
    cues = chat_cues([chat(1.0, 1, "a < b\nc", "Bob <B>"), chat(3661.5, None, "late")], 4000.0)
    assert webvtt(cues) == ("WEBVTT\n\n"
                            "chat-1\n00:00:01.000 --> 00:00:05.000\n<v Bob &lt;B&gt;>a &lt; b\nc</v>\n\n"
                            "chat-i1\n01:01:01.500 --> 01:01:05.500\n<v Ana>late</v>\n")


def test_vtt_time_rounds_to_milliseconds_and_clamps_at_zero():
    """Timestamps are hh:mm:ss.mmm, rounded to the millisecond, never negative."""
    assert [vtt_time(t) for t in (0.0004, 59.9996, 3600 * 10 + 0.25, -1.0)] == [
        "00:00:00.000", "00:01:00.000", "10:00:00.250", "00:00:00.000"]


def test_mov_text_sample_is_a_length_prefixed_name_and_text_in_milliseconds():
    """A mov_text sample is a 16-bit length plus 'Name: text' lines, timed in ms."""
    with av.open(io.BytesIO(), "w", format="mp4") as out:
        stream = add_chat_stream(out)
        cue = chat_cues([chat(1.5, 1, "hé", "Zoë"), chat(1.501, 2, "ok", "Ben")], 10.0)[0]
        pkt = mov_text_packet(cue, stream)
        body = "Zoë: hé\nBen: ok".encode()
        assert bytes(pkt) == struct.pack(">H", len(body)) + body
        assert (pkt.pts, pkt.duration, pkt.time_base) == (1500, 4000, Fraction(1, 1000))


def test_mov_text_sample_is_cut_to_the_length_field_on_a_character_boundary():
    """A text over 65533 bytes is cut to fit the length field, never inside a character."""
    with av.open(io.BytesIO(), "w", format="mp4") as out:
        stream = add_chat_stream(out)
        cue = chat_cues([chat(0.0, 1, "é" * 40000, "AB")], 10.0)[0]
        data = bytes(mov_text_packet(cue, stream))
    (length,) = struct.unpack(">H", data[:2])
    # "AB: " is 4 bytes, so 65533 bytes would end in half an "é": one byte fewer.
    assert length == len(data) - 2 == 0xFFFF - 3
    assert data[2:].decode("utf-8") == "AB: " + "é" * ((length - 4) // 2)
