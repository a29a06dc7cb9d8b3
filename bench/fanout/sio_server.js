// Peer for the fan-out benchmark: Node socket.io 4 doing the same room broadcast.
//
//   node bench/fanout/sio_server.js PORT
//
// No persistence, no authentication: `join` puts the socket in a room; `message.send` builds a
// message object shaped like Podium's, broadcasts `message.new` to the room (the sender is not
// in it) and acks `{message}`.
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
const server = http.createServer();
// BENCH_DEFLATE=1: accept permessage-deflate (threshold 0, as python-socketio's Tornado handler
// compresses every message) for the separately labelled deflate row; the default refuses it.
const deflate = process.env.BENCH_DEFLATE === '1';
const io = new Server(server, { serveClient: false, transports: ['websocket'],
  perMessageDeflate: deflate ? { threshold: 0 } : false });
let nextId = 1;
const seqs = new Map();

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack({ room: String(room) });
  });
  socket.on('message.send', (data, ack) => {
    const room = String(data.room);
    const seq = (seqs.get(room) || 0) + 1;
    seqs.set(room, seq);
    const msg = {
      id: String(nextId++), room, seq,
      sender: { id: socket.id, display_name: 'Bench Publisher' }, kind: 'text',
      content: data.content, file_id: null, reply_to: null, client_msg_id: data.client_msg_id,
      created_at: new Date().toISOString(), edited_at: null, deleted_at: null, reactions: {},
    };
    socket.to(room).emit('message.new', { message: msg });
    if (typeof ack === 'function') ack({ message: msg });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
