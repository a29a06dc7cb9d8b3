"""``make_app(deps)``: the Tornado application (routes + settings). ``server.http.serve``
builds the HTTP server around it from the same configuration."""
from __future__ import annotations

from server.accounts import handlers as accounts
from server.calls import handlers as calls
from server.chat import handlers as chat
from server.deps import Deps
from server.files import handlers as files
from server.http import health
from server.http.base import NotFoundHandler
from server.http.serve import Application
from server.http.static import WebHandler, content_security_policy, log_request
from server.lti import handlers as lti
from server.polls import handlers as polls
from server.provision import handlers as provision
from server.realtime.connection import ChatSocket
from server.recordings import handlers as recordings
from server.rooms import handlers as rooms

ID = r"([^/]+)"


def make_app(deps: Deps) -> Application:
    cfg = deps.config
    d = {"deps": deps}
    routes = [
        (r"/healthz", health.HealthHandler, d),
        (r"/metrics", health.MetricsHandler, d),
        (r"/ws", ChatSocket, d),
        (r"/api/auth/register", accounts.RegisterHandler, d),
        (r"/api/auth/login", accounts.LoginHandler, d),
        (r"/api/me", accounts.MeHandler, d),
        (r"/api/me/password", accounts.PasswordHandler, d),
        (r"/api/me/avatar", accounts.AvatarHandler, d),
        (rf"/avatars/{ID}/{ID}", accounts.AvatarImageHandler, d),
        (r"/api/users", accounts.UsersHandler, d),
        (r"/api/rooms", rooms.RoomsHandler, d),
        (rf"/api/rooms/{ID}", rooms.RoomHandler, d),
        (rf"/api/rooms/{ID}/members", rooms.MembersHandler, d),
        (rf"/api/rooms/{ID}/members/{ID}", rooms.MemberHandler, d),
        (rf"/api/rooms/{ID}/moderation", rooms.ModerationHandler, d),
        (rf"/api/rooms/{ID}/avatar", accounts.RoomAvatarHandler, d),
        (rf"/api/rooms/{ID}/bans", rooms.BansHandler, d),
        (rf"/api/rooms/{ID}/bans/{ID}", rooms.BanHandler, d),
        (rf"/api/rooms/{ID}/messages", chat.MessagesHandler, d),
        (rf"/api/rooms/{ID}/messages/search", chat.SearchHandler, d),
        (rf"/api/rooms/{ID}/statistics", chat.StatisticsHandler, d),
        (rf"/api/messages/{ID}", chat.MessageHandler, d),
        (rf"/api/polls/{ID}/results.csv", polls.PollResultsCsvHandler, d),
        (rf"/api/rooms/{ID}/sessions", calls.RoomSessionsHandler, d),
        (rf"/api/sessions/{ID}/attendance", calls.AttendanceHandler, d),
        (rf"/api/sessions/{ID}/breakouts", calls.BreakoutsHandler, d),
        (rf"/api/breakouts/{ID}/(broadcast|end)", calls.BreakoutActionHandler, d),
        (r"/api/ice-servers", calls.IceServersHandler, d),
        (rf"/api/rooms/{ID}/recordings", recordings.RoomRecordingsHandler, d),
        (rf"/api/recordings/{ID}", recordings.RecordingHandler, d),
        (rf"/api/recordings/{ID}/timeline", recordings.TimelineHandler, d),
        (rf"/api/recordings/{ID}/playback", recordings.PlaybackHandler, d),
        (rf"/api/recordings/{ID}/complete", recordings.CompleteHandler, d),
        (rf"/api/recordings/{ID}/assets/{ID}", recordings.AssetHandler, d),
        (r"/api/files", files.FilesHandler, d),
        (r"/api/files/statistics", files.FileStatisticsHandler, d),
        (r"/api/folders", files.FoldersHandler, d),
        (r"/api/folders/move", files.FolderMoveHandler, d),
        (r"/api/folders/delete", files.FolderDeleteHandler, d),
        (r"/api/folders/(.+)/size", files.FolderSizeHandler, d),
        (rf"/api/files/{ID}/(move|copy)", files.FileActionHandler, d),
        (rf"/api/files/{ID}", files.FileHandler, d),
        (rf"/api/files/{ID}/signed-url", files.SignedUrlHandler, d),
        (rf"/dl/{ID}/{ID}", files.DownloadHandler, d),
        (rf"/api/provision/users/{ID}", provision.UserHandler, d),
        (rf"/api/provision/users/{ID}/sign-in", provision.SignInHandler, d),
        (rf"/api/provision/rooms/{ID}", provision.RoomHandler, d),
        (rf"/api/provision/rooms/{ID}/members/{ID}", provision.MemberHandler, d),
        (r"/lti/login", lti.LoginHandler, d),
        (r"/lti/launch", lti.LaunchHandler, d),
        (r"/lti/jwks", lti.JwksHandler, d),
        (r"/lti/deep-link", lti.DeepLinkHandler, d),
        (rf"/api/rooms/{ID}/lti", lti.RoomLtiHandler, d),
        (rf"/api/rooms/{ID}/lti/roster-sync", lti.RosterSyncHandler, d),
        (rf"/api/sessions/{ID}/lti-grades", lti.GradesHandler, d),
        (r"/api/.*", NotFoundHandler, d),
        (r"/(.*)", WebHandler, {"path": str(cfg.web_dir), "default_filename": "index.html",
                                "csp": content_security_policy(cfg.allowed_origins),
                                "frame_ancestors": deps.lti.frames.get}),
    ]
    return Application(
        routes,
        cfg,
        # Heartbeats are ours (server/realtime/heartbeat.py): one timer for all sockets.
        websocket_ping_interval=0,
        websocket_max_message_size=cfg.max_frame_bytes,
        compress_response=False,
        log_function=log_request,
    )
