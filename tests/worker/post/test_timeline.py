"""Participants as the composite sees them (media_worker/post/timeline.py): when someone is in
the call and whether their camera is on; no I/O."""
from __future__ import annotations

from pathlib import Path

from media_worker.post.manifest import MediaState, Peer, Track, User
from media_worker.post.timeline import Participant, TrackInfo
from media_worker.post.trackfile import TrackProbe

ANA = User("u1", "Ana")


def track(peer_id: str, start_s: float, length_s: float, kind: str = "video") -> TrackInfo:
    """A track of ``peer_id`` whose frames run from ``start_s`` for ``length_s``."""
    name = f"{peer_id}-{kind}-0"
    return TrackInfo(Track(name, peer_id, kind, "vp8", f"tracks/{name}.mkv", offset_s=start_s),
                     Path(name), TrackProbe(packets=10, end_s=length_s), ANA)


def test_present_between_join_and_leave_of_any_peer():
    """Present from each join up to (not at) its leave; absent between a leave and a rejoin."""
    p = Participant(ANA, [Peer("p1", ANA, joined_s=1.0, left_s=4.0), Peer("p2", ANA, joined_s=6.0)], [])
    assert [p.present_at(t) for t in (0.5, 1.0, 3.9, 4.0, 5.0, 6.0, 1e6)] == [
        False, True, True, False, False, True, True]


def test_present_while_sending_even_without_a_join_line():
    """A peer whose join line was lost (crash) is present exactly while its track has frames."""
    p = Participant(ANA, [Peer("p1", ANA)], [track("p1", 2.0, 3.0)])
    assert [p.present_at(t) for t in (1.9, 2.0, 4.9, 5.0)] == [False, True, True, False]


def test_camera_follows_the_latest_media_event():
    """The camera is on until a media event says otherwise; screen sharing counts as a picture."""
    p = Participant(ANA, [Peer("p1", ANA, joined_s=0.0)], [], media={"p1": [
        MediaState(2.0, "p1", True, False, False), MediaState(5.0, "p1", True, False, True)]})
    assert [p.camera_on_at("p1", t) for t in (1.0, 2.0, 4.9, 5.0)] == [True, False, False, True]
    assert p.camera_on_at("other-peer", 3.0)


def test_video_and_audio_tracks_are_told_apart():
    """video_tracks and audio_tracks split the participant's tracks by kind, in order."""
    v, a = track("p1", 0.0, 1.0, "video"), track("p1", 0.0, 1.0, "audio")
    p = Participant(ANA, [], [v, a])
    assert p.video_tracks == [v] and p.audio_tracks == [a]
