"""The device services behind OPEN: legacy `shell:CMD` and `sync:` (push, pull, stat, list).

Legacy shell: the command runs under `/bin/sh -c` with stdout and stderr merged into the
stream, and the stream simply closes when the command ends: no exit status travels.
Sync: 8-byte requests (4-byte id, little-endian length) as in AOSP's SYNC.TXT.
"""

from __future__ import annotations

import os
import stat
import struct
import subprocess
from typing import Callable, Sequence

from tests.adb_loopback.device_root import FakeDeviceRoot
from tests.adb_loopback.stream import Stream, StreamClosed

SYNC_REQUEST = struct.Struct("<4sI")
SYNC_STAT = struct.Struct("<4sIII")
SYNC_DENT = struct.Struct("<4sIIII")
SYNC_MAX_CHUNK = 64 * 1024
SYNC_MAX_PATH = 1024
SHELL_READ_SIZE = 64 * 1024


def run_shell(
    stream: Stream,
    command: str,
    root: FakeDeviceRoot,
    command_prefix: Sequence[str],
    track: Callable[[subprocess.Popen], None],
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run `command` inside the fake root and stream its output until it exits.

    Like adbd's raw legacy shell, closing the stream does not kill the command: it
    keeps running until it ends or writes into the closed pipe. `on_started` is called
    once the command runs and the client was told the stream is open.
    """
    try:
        process = subprocess.Popen(
            [*command_prefix, "/bin/sh", "-c", root.translate_command(command)],
            cwd=root.path,
            env=root.shell_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        stream.refuse()
        return
    track(process)
    try:
        stream.accept()
        if on_started is not None:
            on_started()
        output = process.stdout.fileno()
        while chunk := os.read(output, SHELL_READ_SIZE):
            stream.write(chunk)
        process.wait()
    except StreamClosed:
        pass
    finally:
        process.stdout.close()
        stream.close()


def run_sync(stream: Stream, root: FakeDeviceRoot, stored: Callable[[str], None] = lambda path: None) -> None:
    """Answer sync requests until QUIT, an unknown request, or the stream closes;
    `stored(path)` is called for each file a SEND stored."""

    def send(stream: Stream, root: FakeDeviceRoot, path_and_mode: str) -> None:
        if _send(stream, root, path_and_mode):
            stored(path_and_mode.rpartition(",")[0])

    handlers = {b"STAT": _stat, b"LIST": _list, b"RECV": _receive, b"SEND": send}
    try:
        stream.accept()
        while True:
            request, length = SYNC_REQUEST.unpack(stream.read_exactly(SYNC_REQUEST.size))
            if request == b"QUIT":
                break
            handler = handlers.get(request)
            if handler is None or length > SYNC_MAX_PATH:
                _fail(stream, f"unsupported sync request {request!r} (length {length})")
                break
            handler(stream, root, stream.read_exactly(length).decode("utf-8"))
    except StreamClosed:
        pass
    finally:
        stream.close()


def _fail(stream: Stream, reason: str) -> None:
    message = reason.encode("utf-8")
    stream.write(SYNC_REQUEST.pack(b"FAIL", len(message)) + message)


def _stat(stream: Stream, root: FakeDeviceRoot, path: str) -> None:
    """STAT answers mode, size and mtime of lstat(path); all zero when it does not exist."""
    try:
        info = os.lstat(root.host_path(path))
        values = (info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime) & 0xFFFFFFFF)
    except OSError:
        values = (0, 0, 0)
    stream.write(SYNC_STAT.pack(b"STAT", *values))


def _list(stream: Stream, root: FakeDeviceRoot, path: str) -> None:
    """LIST sends one DENT per directory entry, then a DONE shaped like a DENT."""
    try:
        entries = sorted(os.scandir(root.host_path(path)), key=lambda entry: entry.name)
    except OSError:
        entries = []
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        name = entry.name.encode("utf-8")
        stream.write(
            SYNC_DENT.pack(
                b"DENT", info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime) & 0xFFFFFFFF, len(name)
            )
            + name
        )
    stream.write(SYNC_DENT.pack(b"DONE", 0, 0, 0, 0))


def _receive(stream: Stream, root: FakeDeviceRoot, path: str) -> None:
    """RECV (a pull): the file in DATA chunks of at most 64 KiB, then DONE."""
    try:
        source = open(root.host_path(path), "rb")
    except OSError as exc:
        _fail(stream, f"{path}: {exc.strerror}")
        return
    with source:
        while chunk := source.read(SYNC_MAX_CHUNK):
            stream.write(SYNC_REQUEST.pack(b"DATA", len(chunk)) + chunk)
    stream.write(SYNC_REQUEST.pack(b"DONE", 0))


def _send(stream: Stream, root: FakeDeviceRoot, path_and_mode: str) -> bool:
    """SEND (a push): "path,mode", DATA chunks, DONE carrying the mtime; answer OKAY or FAIL
    and say whether the file was stored.

    Missing parent folders are created (the `fixed_push_mkdir` behaviour); a transfer
    cut short leaves no partial file.
    """
    path, _, mode_text = path_and_mode.rpartition(",")
    mode = int(mode_text) if mode_text.isdigit() else 0o644
    target = root.host_path(path)
    problem = None
    destination = None
    if stat.S_ISLNK(mode):
        problem = f"{path}: the loopback device does not create symlinks"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            destination = open(target, "wb")
        except OSError as exc:
            problem = f"{path}: {exc.strerror}"
    complete = False
    try:
        while True:
            request, length = SYNC_REQUEST.unpack(stream.read_exactly(SYNC_REQUEST.size))
            if request == b"DONE":
                mtime = length
                break
            if request != b"DATA" or length > SYNC_MAX_CHUNK:
                problem = problem or f"unexpected {request!r} ({length} bytes) during SEND"
                _fail(stream, problem)
                raise StreamClosed(problem)
            data = stream.read_exactly(length)
            if destination is not None:
                destination.write(data)
        complete = True
    finally:
        if destination is not None:
            destination.close()
            if not complete:
                target.unlink(missing_ok=True)
    if problem is not None:
        _fail(stream, problem)
        return False
    os.chmod(target, stat.S_IMODE(mode))
    os.utime(target, (mtime, mtime))
    stream.write(SYNC_REQUEST.pack(b"OKAY", 0))
    return True
