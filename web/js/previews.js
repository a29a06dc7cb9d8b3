// The room list's last message: built from a live message the way the server builds it
// (server/rooms/wire.py preview_text / last_message_wire), merged with what the server lists,
// and its time label.

const ATTACHMENT_KINDS = new Set(['image', 'file', 'audio', 'video']);
const PREVIEW_CHARS = 120;

/** The one-line preview of a message: "📎 file" for an attachment, else its text on one line. */
export function previewText(message) {
  if (message.file_id || ATTACHMENT_KINDS.has(message.kind)) return '📎 file';
  const line = String(message.content || '').split(/\s+/).filter(Boolean).join(' ');
  return line.length <= PREVIEW_CHARS ? line : `${line.slice(0, PREVIEW_CHARS - 1).trimEnd()}…`;
}

/** A room's `last_message` from a full message (null for a deleted one). */
export function lastMessageOf(message) {
  if (!message || message.deleted_at) return null;
  return {
    id: message.id, seq: message.seq, kind: message.kind, preview: previewText(message),
    sender: { id: message.sender?.id ?? null, display_name: message.sender?.display_name || '' },
    created_at: message.created_at, edited_at: message.edited_at || null,
  };
}

/**
 * Which last message to show after a room list came from the server: `local` (what live
 * events built) when it is newer than the server's snapshot (its seq is above the snapshot's
 * `last_seq`, or it is the same message edited later), else the server's — unless that one is
 * a message we saw deleted (a snapshot taken just before the deletion).
 */
export function mergeLastMessage(local, fromServer, serverLastSeq, deletedIds) {
  if (local && local.seq > (serverLastSeq || 0)) return local;
  if (fromServer && deletedIds.has(fromServer.id)) return null;
  if (local && fromServer && local.id === fromServer.id && (local.edited_at || '') > (fromServer.edited_at || '')) return local;
  return fromServer || null;
}

/** The room list's previews as live messages change them (`app.previews`). */
export class RoomPreviews {
  constructor() {
    this.deleted = new Set(); // ids of rooms' last messages seen deleted live
  }

  /**
   * Keep the room's `last_message` current with a message that arrived: a newer one replaces
   * it, an edit of it updates it; its deletion empties it. True when the room list must be
   * reloaded (it names the message before a deleted one).
   */
  note(room, message) {
    const current = room.last_message;
    if (message.deleted_at) {
      if (!current || current.id !== message.id) return false;
      this.deleted.add(message.id);
      room.last_message = null;
      return true;
    }
    if (!current || message.seq > current.seq
        || (message.id === current.id && (message.edited_at || '') > (current.edited_at || ''))) {
      room.last_message = lastMessageOf(message);
    }
    return false;
  }

  /** A room as the server lists it now (`fresh`), merged with what live events taught us since. */
  merge(prev, fresh) {
    const serverSeq = fresh.last_seq || 0;
    fresh.last_seq = Math.max(serverSeq, prev.last_seq || 0);
    fresh.last_message = mergeLastMessage(prev.last_message, fresh.last_message, serverSeq, this.deleted);
    return fresh;
  }
}

/** "14:05" today, "Mon" within the last week, else "3 Dec" (local time). */
export function previewTime(iso, now = new Date()) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  if (t.toDateString() === now.toDateString()) return t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (now - t < 6 * 86400000 && now >= t) return t.toLocaleDateString([], { weekday: 'short' });
  return t.toLocaleDateString([], { day: 'numeric', month: 'short' });
}
