"""The RSA key pair that identifies this computer to Android devices, shared with `adb`.

The pair lives where the `adb` tool keeps it (`$ANDROID_USER_HOME`, else `~/.android`:
`adbkey` and `adbkey.pub`), so a phone that already trusts this computer's adb trusts
vitdeploy too, and the "Allow USB debugging?" prompt appears at most once.
"""

from __future__ import annotations

import os
from pathlib import Path

from adb_shell.auth.keygen import keygen, write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner

from bench_runner.devices.base import DeviceError

PRIVATE_KEY_NAME = "adbkey"


def adb_key_dir() -> Path:
    """The folder adb keeps its keys in: `$ANDROID_USER_HOME`, else `~/.android`."""
    configured = os.environ.get("ANDROID_USER_HOME")
    return Path(configured) if configured else Path.home() / ".android"


def ensure_adb_key(directory: Path | None = None) -> Path:
    """Return the private key's path, creating the pair first if there is none.

    A new private key is created readable by its owner only (0600) and a new folder
    0700; an existing pair is used as it is (a missing `adbkey.pub` is rebuilt from
    the private key).
    """
    directory = Path(directory) if directory is not None else adb_key_dir()
    private_key = directory / PRIVATE_KEY_NAME
    public_key = directory / f"{PRIVATE_KEY_NAME}.pub"
    try:
        if not directory.is_dir():
            directory.mkdir(parents=True, mode=0o700)
            directory.chmod(0o700)
        if not private_key.exists():
            # Create the file 0600 before any key byte is written; keygen then fills it.
            os.close(os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            keygen(str(private_key))
            private_key.chmod(0o600)
        elif not public_key.exists():
            write_public_keyfile(str(private_key), str(public_key))
    except OSError as exc:
        raise DeviceError(
            f"cannot create the adb key pair in {directory}: {exc.strerror}; "
            "set ANDROID_USER_HOME to a writable folder"
        ) from None
    return private_key


def load_adb_signer(directory: Path | None = None) -> CryptographySigner:
    """The signer adb-shell authenticates with, from the (possibly new) key pair."""
    private_key = ensure_adb_key(directory)
    try:
        return CryptographySigner(str(private_key))
    except (OSError, ValueError) as exc:
        raise DeviceError(
            f"cannot read the adb key {private_key}: {exc}; move the broken pair away and a new one is created"
        ) from None
