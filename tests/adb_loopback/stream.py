"""One ADB stream seen from the device: flow-controlled writes and buffered reads.

After each WRTE the sender waits for the peer's OKAY before the next one; an OPEN counts
as the first OKAY (protocol.txt). Reads block until enough bytes arrived or the stream
closed.
"""

from __future__ import annotations

import threading
from typing import Callable

from tests.adb_loopback import wire


class StreamClosed(Exception):
    """The stream closed (either side, or the connection) before the operation finished."""


class Stream:
    """The device end of a stream: `local_id` is ours, `remote_id` the client's.

    `send` puts one message on the connection (it raises OSError once the connection is
    gone); `forget` removes the stream from the connection's table when we close it.
    """

    def __init__(
        self,
        local_id: int,
        remote_id: int,
        max_write: int,
        send: Callable[[wire.Message], None],
        forget: Callable[[Stream], None],
    ) -> None:
        self.local_id = local_id
        self.remote_id = remote_id
        self._max_write = max_write
        self._send = send
        self._forget = forget
        self._condition = threading.Condition()
        self._inbound = bytearray()
        self._may_write = True
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def accept(self) -> None:
        """Tell the client the service is open (OKAY)."""
        self._send_or_close(wire.Message(wire.OKAY, self.local_id, self.remote_id))

    def refuse(self) -> None:
        """Tell the client the service could not be opened (CLSE with local id 0)."""
        with self._condition:
            self._closed = True
        self._forget(self)
        try:
            self._send(wire.Message(wire.CLSE, 0, self.remote_id))
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        """Send `data` in WRTE messages, each after the previous one was acknowledged."""
        view = memoryview(data)
        while view:
            chunk, view = view[: self._max_write], view[self._max_write :]
            with self._condition:
                self._condition.wait_for(lambda: self._may_write or self._closed)
                if self._closed:
                    raise StreamClosed("stream closed while writing")
                self._may_write = False
            self._send_or_close(wire.Message(wire.WRTE, self.local_id, self.remote_id, bytes(chunk)))

    def read_exactly(self, size: int) -> bytes:
        """Return the next `size` bytes the client wrote; StreamClosed if they never come."""
        with self._condition:
            self._condition.wait_for(lambda: len(self._inbound) >= size or self._closed)
            if len(self._inbound) < size:
                raise StreamClosed(f"stream closed with {len(self._inbound)} of {size} bytes")
            data = bytes(self._inbound[:size])
            del self._inbound[:size]
            return data

    def close(self) -> None:
        """Close from the device side (CLSE), once."""
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._condition.notify_all()
        self._forget(self)
        try:
            self._send(wire.Message(wire.CLSE, self.local_id, self.remote_id))
        except OSError:
            pass

    def on_ready(self) -> None:
        with self._condition:
            self._may_write = True
            self._condition.notify_all()

    def on_data(self, data: bytes) -> None:
        with self._condition:
            self._inbound += data
            self._condition.notify_all()

    def on_closed(self) -> None:
        """The client closed the stream, or the connection dropped."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _send_or_close(self, message: wire.Message) -> None:
        try:
            self._send(message)
        except OSError as exc:
            self.on_closed()
            raise StreamClosed(f"connection lost: {exc}") from None
