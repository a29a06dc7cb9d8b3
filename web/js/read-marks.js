// How far we have read each room, and its unread count (the room list, as `app.reads`; the chat
// view reports what it showed with `markRead`).

export class ReadMarks {
  constructor(app) {
    this.app = app;
    this.local = new Map(); // room id → seq we reported with `read`
  }

  /** The highest of: the room list's `my_read_seq`, our own read receipts, what we reported. */
  myReadSeq(roomId) {
    const { app } = this;
    return Math.max(
      app.rooms.get(roomId)?.my_read_seq || 0,
      app.store.room(roomId).reads.get(app.me.id) || 0,
      this.local.get(roomId) || 0,
    );
  }

  unread(roomId) {
    const { app } = this;
    const last = Math.max(app.rooms.get(roomId)?.last_seq || 0, app.store.room(roomId).lastSeq);
    return Math.max(0, last - this.myReadSeq(roomId));
  }

  /** Report that the user has seen everything up to `seq` in the room. */
  markRead(roomId, seq) {
    const { app } = this;
    if (!seq || seq <= this.myReadSeq(roomId) || !app.socket.online) return;
    this.local.set(roomId, seq);
    app.emit('rooms');
    app.socket.request('read', { room: roomId, seq }).catch((err) => {
      // Forget the local mark so the view reports it again when it next can.
      if (this.local.get(roomId) === seq) this.local.delete(roomId);
      console.warn(`room ${roomId}: read ${seq} failed: ${err.code}`);
    });
  }
}
