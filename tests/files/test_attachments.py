"""Chat attachments: messages of kind image/file/audio/video carry a file the sender may see,
and the file becomes visible to the room."""
from tests.s3server import storage_settings  # noqa: F401  (every test here runs on disk and on S3)
from tests.files.test_files import PNG, upload

TEXT = "Read chapter 2 before Thursday.\n".encode()


async def _room(server):
    _, ana_tok = await server.user("att_ana", "instructor")
    ben, ben_tok = await server.user("att_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    return room, ana_tok, ben_tok


async def test_attached_file_becomes_visible_to_the_room(server):
    """An own upload sent as an image message is stored with its file_id and becomes visible to the room."""
    room, ana_tok, ben_tok = await _room(server)
    (f,) = await upload(server, ben_tok, [("diagram.png", PNG)])
    status, _ = await server.http("GET", f"/api/files/{f['id']}", ana_tok)
    assert status == 404  # not the instructor's, not in a room yet
    b = await server.client(ben_tok)
    ack = await b.request("message.send", room=room["id"], client_msg_id="a1", kind="image",
                          content="my diagram", file_id=f["id"])
    assert ack["message"]["file_id"] == f["id"] and ack["message"]["kind"] == "image"
    status, body = await server.http("GET", f"/api/files/{f['id']}", ana_tok)
    assert status == 200 and body["file"]["room"] == room["id"]


async def test_attachment_rules(server):
    """Others' private files, documents as images and unknown or deleted files are refused; nothing is stored."""
    room, ana_tok, ben_tok = await _room(server)
    (private,) = await upload(server, ana_tok, [("secret.png", PNG)])
    (doc,) = await upload(server, ben_tok, [("notes.txt", TEXT)])
    (gone,) = await upload(server, ben_tok, [("gone.png", PNG)])
    assert (await server.http("DELETE", f"/api/files/{gone['id']}", ben_tok))[0] in (200, 204)
    b = await server.client(ben_tok)
    cases = [("image", private["id"], "forbidden"), ("image", doc["id"], "bad_request"),
             ("file", "nosuchfile", "not_found"), ("image", gone["id"], "not_found")]
    for n, (kind, file_id, code) in enumerate(cases):
        err = await b.request_raw("message.send", room=room["id"], client_msg_id=f"x{n}", kind=kind,
                                  content="", file_id=file_id)
        assert err["type"] == "error" and err["code"] == code, (kind, file_id, err)
    ok = await b.request("message.send", room=room["id"], client_msg_id="doc", kind="file",
                         content="notes", file_id=doc["id"])
    assert ok["message"]["seq"] == 1  # the refused sends took no seq
    status, body = await server.http("GET", f"/api/files/{private['id']}", ben_tok)
    assert status == 404
