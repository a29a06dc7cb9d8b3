"""The server side of RFC 6455 with a cheaper read path than Tornado's (issue 18.3).

Tornado's ``WebSocketProtocol13`` reads a frame in three or four awaited ``read_bytes`` calls
(header, length, mask, payload) and runs each message's ``on_message`` in a task of its own.
Most of a chat socket's frames are small and arrive one at a time, so per frame that was
several futures, a task, a failed ``recv`` and two ``epoll_ctl`` calls: after the header's
read, the payload still in IOStream's buffer made it stop listening for reads, and the next
header's read registered the socket again. In the soak (bench/scaleout) this was a larger
part of a web process's time than the frames' own work.

:class:`FrameReader` keeps Tornado's handshake, writes, pings, close handshake and
per-message-deflate, and replaces only the receive loop: each read takes whatever the socket
has (``read_bytes(..., partial=True)``: IOStream's buffer is then empty, so it keeps listening)
and every complete frame in it is parsed here and handled in order, ``on_message`` awaited
in the loop's own task. The rules are Tornado's (reserved bits, control frames, fragments,
``max_message_size``, yielding to the loop after a burst); control frames and compressed
messages go through Tornado's own ``_handle_message``. Pinned with ``tornado_stream``'s
version check; tests/realtime/test_frame_reader.py feeds it frames split at every byte.
"""
from __future__ import annotations

import asyncio
import sys

from tornado.iostream import StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol13

READ_CHUNK = 65536
YIELD_THRESHOLD = 256 * 1024  # as Tornado: yield to the loop after this much work in one go
FRAME_YIELD_COST = 1024  # each frame counts as this many bytes of work


class FrameReader(WebSocketProtocol13):
    async def _receive_frame_loop(self) -> None:
        buf = bytearray()
        work = 0
        try:
            while not self.client_terminated:
                chunk = await self.stream.read_bytes(READ_CHUNK, partial=True)
                self._wire_bytes_in += len(chunk)
                buf += chunk
                pos = 0
                while not self.client_terminated:
                    end = await self._next_frame(buf, pos)
                    if end is None:
                        break
                    work += FRAME_YIELD_COST + end - pos
                    pos = end
                    if work >= YIELD_THRESHOLD:
                        work = 0
                        await asyncio.sleep(0)
                del buf[:pos]
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _next_frame(self, buf: bytearray, pos: int) -> int | None:
        """Handle the frame that starts at ``pos``; where the next one starts, or None when
        ``buf`` does not hold all of it yet (or the connection was aborted)."""
        have = len(buf) - pos
        if have < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        fin, reserved, opcode = b0 & self.FIN, b0 & self.RSV_MASK, b0 & self.OPCODE_MASK
        control = opcode & 0x8
        if self._decompressor is not None and opcode != 0:
            self._frame_compressed = bool(reserved & self.RSV1)
            reserved &= ~self.RSV1
        if reserved:  # extensions we did not negotiate
            self._abort()
            return None
        masked, n = b1 & 0x80, b1 & 0x7F
        if control and n >= 126:  # control frames have payloads under 126 bytes
            self._abort()
            return None
        head = 2
        if n == 126:
            if have < 4:
                return None
            n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
        elif n == 127:
            if have < 10:
                return None
            n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
        size = n + (len(self._fragmented_message_buffer) if self._fragmented_message_buffer is not None else 0)
        if size > self.params.max_message_size:  # refused from the header, before the payload arrives
            self.close(1009, "message too big")
            self._abort()
            return None
        mask = None
        if masked:
            if have < head + 4:
                return None
            mask = bytes(buf[pos + head:pos + head + 4])
            head += 4
        if have < head + n:
            return None
        data = bytes(buf[pos + head:pos + head + n])
        if mask is not None:
            data = _websocket_mask(mask, data)
        end = pos + head + n

        if control:
            if not fin:  # control frames are never fragmented
                self._abort()
                return None
        elif opcode == 0:  # continuation
            if self._fragmented_message_buffer is None:
                self._abort()
                return None
            self._fragmented_message_buffer.extend(data)
            if fin:
                opcode = self._fragmented_message_opcode
                data = bytes(self._fragmented_message_buffer)
                self._fragmented_message_buffer = None
        else:  # a new message
            if self._fragmented_message_buffer is not None:
                self._abort()
                return None
            if not fin:
                self._fragmented_message_opcode = opcode
                self._fragmented_message_buffer = bytearray(data)
        if fin:
            await self._deliver(opcode, data)
        return None if self.client_terminated else end

    async def _deliver(self, opcode: int, data: bytes) -> None:
        """A whole message: text and binary to ``on_message``, awaited here (in order, no task
        of its own); control frames and compressed messages through Tornado's own handling."""
        if opcode not in (0x1, 0x2) or self._frame_compressed or self.client_terminated:
            handled = self._handle_message(opcode, data)
            if handled is not None:
                await handled
            return
        self._message_bytes_in += len(data)
        if opcode == 0x1:
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                self._abort()
                return
        try:
            result = self.handler.on_message(data)
            if result is not None:
                await result
        except (Exception, asyncio.CancelledError):  # as Tornado's _run_callback: log, then drop the socket
            self.handler.log_exception(*sys.exc_info())
            self._abort()
