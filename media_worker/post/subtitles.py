"""Chat as timed text: ``chat.vtt`` (WebVTT) and the composite's ``mov_text`` stream.

Each message is shown from its time for ``SHOW_S`` seconds or until the next message,
whichever is first; messages sent at the same instant (within 10 ms) share one cue, one line
each. Cues starting at or after the end of the recording are dropped.
"""
from __future__ import annotations

import fractions
import struct
from dataclasses import dataclass

import av

from media_worker.post.manifest import Chat

SHOW_S = 4.0
SAME_INSTANT_S = 0.01


@dataclass
class Line:
    speaker: str
    text: str


@dataclass
class Cue:
    start_s: float
    end_s: float
    lines: list[Line]
    ident: str


def _clean(text: str) -> str:
    """Message text with no empty line (an empty line would end a WebVTT cue)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line for line in lines if line.strip())


def chat_cues(chats: list[Chat], duration_s: float) -> list[Cue]:
    groups: list[list[Chat]] = []
    for chat in sorted(chats, key=lambda c: (c.t_s, c.seq or 0)):
        if not _clean(chat.text):
            continue
        if groups and chat.t_s - groups[-1][0].t_s < SAME_INSTANT_S:
            groups[-1].append(chat)
        else:
            groups.append([chat])
    cues: list[Cue] = []
    for i, group in enumerate(groups):
        start = max(0.0, group[0].t_s)
        if start >= duration_s:
            break
        end = start + SHOW_S
        if i + 1 < len(groups):
            end = min(end, max(0.0, groups[i + 1][0].t_s))
        end = min(end, duration_s)
        if end - start < 0.001:  # clamped to zero length (before the clock's zero)
            continue
        seq = group[0].seq
        cues.append(Cue(start, end, [Line(c.user.display_name, _clean(c.text)) for c in group],
                        f"chat-{seq}" if seq is not None else f"chat-i{i}"))
    return cues


# -- WebVTT ------------------------------------------------------------------------------------
def vtt_escape(text: str) -> str:
    """Escape for WebVTT cue text: ``&``, ``<``, ``>`` (so ``-->`` cannot appear either)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def webvtt(cues: list[Cue]) -> str:
    out = ["WEBVTT", ""]
    for cue in cues:
        out.append(cue.ident)
        out.append(f"{vtt_time(cue.start_s)} --> {vtt_time(cue.end_s)}")
        for line in cue.lines:
            # A voice span per message line; the name escaped like text (it ends at '>').
            body = "\n".join(vtt_escape(part) for part in line.text.split("\n"))
            out.append(f"<v {vtt_escape(line.speaker)}>{body}</v>")
        out.append("")
    return "\n".join(out)


# -- mov_text ----------------------------------------------------------------------------------
# The mov_text encoder needs an ASS header to build its sample description (tx3g); this is
# libavcodec's default one. Samples are written directly: a 16-bit length and UTF-8 text.
ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n"
    b"[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n"
    b"\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n\n")
MS = fractions.Fraction(1, 1000)
MAX_SAMPLE_BYTES = 0xFFFF


def add_chat_stream(output: av.container.OutputContainer) -> av.stream.Stream:
    stream = output.add_stream("mov_text")
    stream.codec_context.subtitle_header = ASS_HEADER
    stream.metadata["title"] = "Chat"
    stream.metadata["language"] = "und"
    return stream


def mov_text_packet(cue: Cue, stream: av.stream.Stream) -> av.Packet:
    text = "\n".join(f"{line.speaker}: {line.text}" for line in cue.lines).encode()
    text = text[:MAX_SAMPLE_BYTES - 2].decode("utf-8", "ignore").encode()
    pkt = av.Packet(struct.pack(">H", len(text)) + text)
    pkt.stream = stream
    pkt.time_base = MS
    pkt.pts = pkt.dts = round(cue.start_s * 1000)
    pkt.duration = max(1, round(cue.end_s * 1000) - pkt.pts)
    return pkt
