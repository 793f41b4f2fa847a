"""adb-shell's TCP transport, made to notice a closed socket and to send whole messages.

Its own module so that `bench_runner.devices.android` imports adb-shell's transports only
when it opens a connection.
"""

from __future__ import annotations

from adb_shell.transport.tcp_transport import TcpTransport


class StrictTcpTransport(TcpTransport):
    """A TcpTransport that raises when the peer is gone and writes every byte it is given.

    The stock transport returns empty reads forever once the peer is gone (adb-shell
    then spins until its read timeout) and may send only part of a large message on
    its non-blocking socket.
    """

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        data = super().bulk_read(numbytes, transport_timeout_s)
        if not data:
            raise ConnectionResetError("the device closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        view = memoryview(data)
        while view:
            view = view[super().bulk_write(view, transport_timeout_s) :]
        return len(data)
