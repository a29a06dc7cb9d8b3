"""Participants as the composite sees them (media_worker/post/timeline.py): when someone is in
the call, whether their camera is on, when a screen is shared and the size a camera usually
sends; no I/O."""
from __future__ import annotations

from pathlib import Path

from media_worker.post.manifest import MediaState, Peer, Track, User
from media_worker.post.timeline import Participant, TrackInfo, screen_shares, share_at, usual_size
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


def _share_part(peer_id: str, tracks: list[TrackInfo], media: list[MediaState], left_s=None) -> Participant:
    return Participant(ANA, [Peer(peer_id, ANA, joined_s=0.0, left_s=left_s)], tracks,
                       media={peer_id: media} if media else {})


def test_a_mesh_video_is_a_shared_screen_while_media_says_screen():
    """In a mesh the screen replaces the camera on the one video track: it is a share exactly
    between the media events that turn ``screen`` on and off (and until the leave)."""
    v = track("p1", 0.0, 20.0)
    p = _share_part("p1", [v], [MediaState(2.0, "p1", True, False, True),
                                MediaState(5.0, "p1", True, True, False),
                                MediaState(8.0, "p1", True, False, True)], left_s=12.0)
    assert [(s.start_s, s.end_s, s.track is v) for s in screen_shares([p], 30.0)] == [
        (2.0, 5.0, True), (8.0, 12.0, True)]


def test_an_sfu_screen_feed_is_a_share_and_a_camera_feed_never_is():
    """A ``source: screen`` track is a share from its start until its publisher says
    ``screen: false``; a ``source: camera`` track is not one even while ``screen`` is on."""
    cam, screen = track("p1", 0.0, 20.0), track("p1", 3.0, 10.0)
    cam.track.source, screen.track.source = "camera", "screen"
    p = _share_part("p1", [cam, screen], [MediaState(2.9, "p1", True, True, True),
                                          MediaState(6.0, "p1", True, True, False)])
    assert [(s.start_s, s.end_s, s.track is screen) for s in screen_shares([p], 30.0)] == [(3.0, 6.0, True)]
    assert p.camera_tracks == [cam]


def test_the_latest_started_share_is_on_stage():
    """Two shares at once: the one started last is on stage; when it stops, the other again."""
    a, b = track("p1", 1.0, 9.0), track("p2", 3.0, 2.0)
    a.track.source = b.track.source = "screen"
    shares = screen_shares([_share_part("p1", [a], []), _share_part("p2", [b], [])], 30.0)
    assert [share_at(shares, t).track is a if share_at(shares, t) else None
            for t in (0.5, 2.0, 3.5, 5.5, 10.5)] == [None, True, False, True, None]


def test_the_usual_size_ignores_a_short_burst_at_a_higher_resolution():
    """A camera that sends 1280x720 for its first second and 640x480 for the next nine counts
    as 640x480; a size held a quarter of the time (or 30 s) counts, the largest of those wins."""
    v = track("p1", 0.0, 10.0)
    v.probe.size_changes = [(0.0, 1280, 720), (1.0, 640, 480)]
    assert usual_size(v) == (640, 480)
    v.probe.size_changes = [(0.0, 1280, 720), (3.0, 640, 480)]
    assert usual_size(v) == (1280, 720)
    v.probe.end_s = 200.0  # a minute at 1280x720 in 200 s
    v.probe.size_changes = [(0.0, 640, 480), (100.0, 1280, 720), (160.0, 640, 480)]
    assert usual_size(v) == (1280, 720)
