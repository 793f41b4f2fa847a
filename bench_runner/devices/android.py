"""Android phones over ADB, spoken directly by the `adb-shell` package (no adb server).

Transports: TCP (`address = "host:port"`, adb over Wi-Fi or `adb tcpip`) and USB
(`serial`, needs adb-shell's `usb` extra, libusb1). The computer authenticates with the
adb key pair of `bench_runner.devices.adb_keys`; a phone that never saw it asks its user
to "Allow USB debugging".

Every command goes through the device's legacy shell, which returns neither an exit
status nor a separate stderr: `run` wraps the argv (each argument quoted) so the shell
prints the command's pid and exit status after unique markers and keeps its stderr in a
file under the working directory, then strips the markers again.

adb-shell's connection and key code is imported on first use, not with this module, so
that registering the kind (on every `bench_runner.devices` import) stays cheap.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from adb_shell import exceptions as adb_errors

from bench_runner.devices.base import CommandResult, DeviceError, DeviceInfo
from bench_runner.devices.kinds import DeviceKind, NativeRunner

if TYPE_CHECKING:
    from adb_shell.adb_device import AdbDevice
    from adb_shell.auth.sign_cryptography import CryptographySigner

    from bench_runner.profiles import DeviceProfile

DEFAULT_WORKDIR = "/data/local/tmp/vitdeploy"
DEFAULT_TCP_PORT = 5555

# Folders a careless workdir could name; cleanup() would wipe them.
_SHARED_FOLDERS = {"/data/local", "/data/local/tmp", "/sdcard", "/storage/emulated", "/storage/emulated/0"}

# What adb-shell or the socket raise when the link to the device breaks.
_LINK_ERRORS = (
    OSError,
    adb_errors.AdbConnectionError,
    adb_errors.InvalidChecksumError,
    adb_errors.InvalidCommandError,
    adb_errors.InvalidResponseError,
    adb_errors.UsbReadFailedError,
    adb_errors.UsbWriteFailedError,
)
_SILENCE_ERRORS = (adb_errors.AdbTimeoutError, adb_errors.TcpTimeoutException)

INFO_SCRIPT = """\
for name in ro.product.model ro.product.cpu.abi ro.build.fingerprint ro.soc.model ro.board.platform ro.hardware; do
  echo "prop $name=$(getprop "$name" 2>/dev/null)"
done
echo "possible=$(cat /sys/devices/system/cpu/possible 2>/dev/null)"
for dir in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$dir" ] && echo "cpu ${dir##*/}=$(cat "$dir/cpufreq/scaling_cur_freq" 2>/dev/null)"
done
for zone in /sys/class/thermal/thermal_zone*; do
  [ -r "$zone/temp" ] && echo "thermal $(cat "$zone/type" 2>/dev/null)=$(cat "$zone/temp" 2>/dev/null)"
done
true
"""


def marked_command(argv: Sequence[str], workdir: str, marker: str) -> str:
    """The shell line that runs `argv` and reports its pid and exit status after `marker`.

    The command runs in the background so its pid is known (a command that outlives
    its timeout can be killed) and the shell waits for it; stdin is /dev/null.
    """
    stderr_file = shlex.quote(f"{workdir}/.stderr-{marker}")
    return (
        f"mkdir -p {shlex.quote(workdir)}; "
        f"{shlex.join(argv)} 2>{stderr_file} </dev/null & pid=$!; "
        f'echo "{marker}pid=$pid"; wait "$pid"; status=$?; '
        f'echo "{marker}exit=$status"; cat {stderr_file} 2>/dev/null; rm -f {stderr_file}'
    )


@dataclass(frozen=True)
class MarkedOutput:
    """What a `marked_command` printed: pid and exit status (None when they never came)."""

    pid: int | None
    exit_code: int | None
    stdout: str
    stderr: str


def parse_marked_output(raw: bytes, marker: str) -> MarkedOutput:
    """Split a `marked_command`'s output into stdout, exit status and stderr.

    Tolerates the CR LF line ends of old devices whose shell runs on a terminal.
    """
    text = raw.decode("utf-8", "replace")
    pid_line = re.compile(re.escape(marker) + r"pid=(\d+)\r?\n")
    pid_match = pid_line.search(text)
    pid = int(pid_match.group(1)) if pid_match else None
    text = pid_line.sub("", text, count=1)
    exit_match = None
    for exit_match in re.finditer(re.escape(marker) + r"exit=(\d+)\r?\n", text):
        pass
    if exit_match is None:
        return MarkedOutput(pid, None, text, "")
    return MarkedOutput(pid, int(exit_match.group(1)), text[: exit_match.start()], text[exit_match.end() :])


def parse_info_report(report: str, fallback_name: str) -> DeviceInfo:
    """Build a DeviceInfo from INFO_SCRIPT's output; absent facts stay empty.

    Thermal zones report millidegrees Celsius; a few old kernels report whole degrees,
    recognised by a magnitude under 1000.
    """
    props: dict[str, str] = {}
    possible = ""
    frequencies: dict[int, int] = {}
    core_dirs = 0
    thermal: dict[str, float] = {}
    for line in report.splitlines():
        key, _, value = line.rstrip("\r").partition("=")
        value = value.strip()
        if key.startswith("prop "):
            props[key[len("prop ") :]] = value
        elif key == "possible":
            possible = value
        elif key.startswith("cpu cpu") and key[len("cpu cpu") :].isdigit():
            core_dirs += 1
            if value.isdigit():
                frequencies[int(key[len("cpu cpu") :])] = int(value)
        elif key.startswith("thermal ") and re.fullmatch(r"-?\d+", value):
            zone = key[len("thermal ") :] or "zone"
            name, suffix = zone, 2
            while name in thermal:
                name, suffix = f"{zone}#{suffix}", suffix + 1
            reading = int(value)
            thermal[name] = reading / 1000 if abs(reading) >= 1000 else float(reading)
    cpu_model = next(
        (props[name] for name in ("ro.soc.model", "ro.board.platform", "ro.hardware") if props.get(name)), ""
    )
    return DeviceInfo(
        kind=AndroidDevice.kind,
        name=props.get("ro.product.model") or fallback_name,
        abi=props.get("ro.product.cpu.abi", ""),
        cpu_model=cpu_model,
        cores=_count_cpus(possible) or core_dirs,
        os=props.get("ro.build.fingerprint", ""),
        frequencies_khz=tuple(frequencies[index] for index in sorted(frequencies)),
        thermal_c=thermal,
    )


def _count_cpus(cpu_list: str) -> int:
    """Count the CPUs in a kernel CPU list such as "0-3,6"; 0 when unreadable."""
    count = 0
    for part in filter(None, cpu_list.split(",")):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return 0
        count += int(last or first) - int(first) + 1
    return count


def parse_tcp_address(address: str) -> tuple[str, int]:
    """Split "host:port" ("[v6]:port" for IPv6); the port defaults to 5555."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        host, port = address, str(DEFAULT_TCP_PORT)
    host = host.strip("[]")
    if not host:
        raise DeviceError(f"adb address {address!r} has no host; write it as host:port, e.g. 192.168.1.20:5555")
    return host, int(port)


class _Timeout(Exception):
    """The command ran past its deadline while still printing."""


class AndroidDevice:
    """An Android device reached over ADB by TCP `address` ("host:port") or USB `serial`.

    The connection opens on first use. `workdir` is the device folder for pushed files
    (created by `run`, removed by `cleanup`). Timeouts: `connect_timeout_s` for the
    handshake, `auth_timeout_s` for the user to allow this computer's key,
    `transfer_timeout_s` for silence during push and pull, `command_timeout_s` for the
    short commands of `info` and `cleanup`.
    """

    kind = "android"

    def __init__(
        self,
        *,
        address: str | None = None,
        serial: str | None = None,
        name: str | None = None,
        workdir: str = DEFAULT_WORKDIR,
        key_dir: Path | None = None,
        connect_timeout_s: float = 10.0,
        auth_timeout_s: float = 30.0,
        transfer_timeout_s: float = 120.0,
        command_timeout_s: float = 60.0,
    ) -> None:
        from bench_runner.devices.adb_keys import adb_key_dir

        if (address is None) == (serial is None):
            raise DeviceError("an Android device needs exactly one of a TCP address (host:port) or a USB serial")
        if (
            posixpath.normpath(workdir) != workdir
            or not workdir.startswith("/")
            or workdir.count("/") < 2
            or workdir in _SHARED_FOLDERS
        ):
            raise DeviceError(
                f"Android workdir {workdir!r} must be an absolute, normalized folder of vitdeploy's own "
                f"(cleanup removes it), such as {DEFAULT_WORKDIR}"
            )
        self.target = address if address is not None else f"usb:{serial}"
        self.name = name or (address if address is not None else serial)
        self.workdir = workdir
        self._address = address
        self._serial = serial
        self._key_dir = Path(key_dir) if key_dir is not None else adb_key_dir()
        self._connect_timeout_s = connect_timeout_s
        self._auth_timeout_s = auth_timeout_s
        self._transfer_timeout_s = transfer_timeout_s
        self._command_timeout_s = command_timeout_s
        self._adb: AdbDevice | None = None
        self._signer: CryptographySigner | None = None

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> AndroidDevice:
        """Open the device of an `android` profile's [connection] table."""
        connection = profile.connection
        if (connection.address is None) == (connection.serial is None):
            where = f" ({profile.source})" if profile.source else ""
            raise DeviceError(
                f"profile {profile.name!r}{where} needs exactly one of [connection] address = \"host:port\" "
                "(adb over Wi-Fi or `adb tcpip 5555`) or serial = \"...\" (USB, as `adb devices` lists it)"
            )
        return cls(address=connection.address, serial=connection.serial, name=profile.name)

    def connect(self) -> AndroidDevice:
        """Open the ADB connection now (it otherwise opens on first use)."""
        self._connection()
        return self

    def close(self) -> None:
        """Close the ADB connection; the next call reconnects."""
        if self._adb is not None:
            self._adb.close()
            self._adb = None

    def push(self, local: Path, remote: str) -> None:
        """Copy a local file to `remote`, keeping its permission bits (harnesses stay executable)."""
        local = Path(local)
        if not local.is_file():
            raise DeviceError(f"cannot push {local} to device {self.name}: no such local file")
        local_stat = local.stat()
        adb = self._connection()
        try:
            adb.push(
                str(local),
                remote,
                st_mode=stat.S_IFREG | stat.S_IMODE(local_stat.st_mode),
                mtime=int(local_stat.st_mtime),
                transport_timeout_s=self._transfer_timeout_s,
                read_timeout_s=self._transfer_timeout_s,
            )
        except (adb_errors.PushFailedError, adb_errors.AdbCommandFailureException) as exc:
            raise DeviceError(
                f"device {self.name} refused to store {local.name} at {remote}: {_device_reason(exc)}; "
                "check free space (`adb shell df /data`) and that the folder is writable"
            ) from None
        except (*_LINK_ERRORS, *_SILENCE_ERRORS) as exc:
            raise self._lost(f"pushing {local.name} to {remote}", _describe(exc)) from None

    def pull(self, remote: str, local: Path) -> None:
        """Copy `remote` back to `local`; `local` appears only once the copy is complete."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        adb = self._connection()
        try:
            adb.pull(
                remote,
                str(partial),
                transport_timeout_s=self._transfer_timeout_s,
                read_timeout_s=self._transfer_timeout_s,
            )
        except adb_errors.AdbCommandFailureException as exc:
            partial.unlink(missing_ok=True)
            raise DeviceError(f"cannot pull {remote} from device {self.name}: {_device_reason(exc)}") from None
        except (*_LINK_ERRORS, *_SILENCE_ERRORS) as exc:
            partial.unlink(missing_ok=True)
            raise self._lost(f"pulling {remote}", _describe(exc)) from None
        partial.replace(local)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run `argv` on the device (each argument quoted for its shell) within `timeout` seconds.

        A command still running at the deadline is killed and DeviceError raised; so is
        DeviceError when the device disappears before the command reports its status.
        """
        if not argv:
            raise DeviceError("cannot run an empty command on a device")
        marker = f"__vitdeploy_{secrets.token_hex(8)}__"
        adb = self._connection()
        output = bytearray()
        deadline = time.monotonic() + timeout
        try:
            for chunk in adb.streaming_shell(
                marked_command(argv, self.workdir, marker),
                transport_timeout_s=timeout,
                read_timeout_s=timeout,
                decode=False,
            ):
                output += chunk
                if time.monotonic() > deadline:
                    raise _Timeout
        except (_Timeout, *_SILENCE_ERRORS):
            self._stop_overdue(argv, timeout, parse_marked_output(bytes(output), marker).pid)
        except _LINK_ERRORS as exc:
            raise self._lost(f"running `{shlex.join(argv)}`", _describe(exc)) from None
        result = parse_marked_output(bytes(output), marker)
        if result.exit_code is None:
            raise self._lost(f"running `{shlex.join(argv)}`", "its shell ended before the command did")
        return CommandResult(exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr)

    def info(self) -> DeviceInfo:
        """Read ABI, model, SoC, build fingerprint, cores, per-core frequencies and temperatures."""
        result = self.run(["sh", "-c", INFO_SCRIPT], self._command_timeout_s)
        return parse_info_report(result.stdout, self.name)

    def cleanup(self) -> None:
        """Remove the working directory and everything pushed into it, then disconnect."""
        result = self.run(["rm", "-rf", self.workdir], self._command_timeout_s)
        self.close()
        if result.exit_code != 0:
            raise DeviceError(
                f"could not remove {self.workdir} on device {self.name}: {(result.stderr or result.stdout).strip()}"
            )

    def _connection(self) -> AdbDevice:
        if self._adb is not None and self._adb.available:
            return self._adb
        self.close()
        if self._signer is None:
            from bench_runner.devices.adb_keys import load_adb_signer

            self._signer = load_adb_signer(self._key_dir)
        adb = self._open_transport()
        asked_user = []
        try:
            adb.connect(
                rsa_keys=[self._signer],
                transport_timeout_s=self._connect_timeout_s,
                auth_timeout_s=self._auth_timeout_s,
                read_timeout_s=self._connect_timeout_s,
                auth_callback=lambda _device: asked_user.append(True),
            )
        except (*_LINK_ERRORS, *_SILENCE_ERRORS, adb_errors.DeviceAuthError) as exc:
            adb.close()
            if asked_user:
                raise DeviceError(
                    f"device {self.name} did not accept this computer's adb key ({self._key_dir / 'adbkey.pub'}) "
                    f"within {self._auth_timeout_s:g} s: unlock the phone, tap \"Allow\" on the USB debugging "
                    "prompt (tick \"Always allow\"), and try again"
                ) from None
            raise DeviceError(
                f"cannot connect to device {self.name} over adb at {self.target} ({_describe(exc)}): "
                "check that USB debugging (or wireless debugging / `adb tcpip 5555`) is on, the address or "
                "serial is right, and that `adb devices` lists the device"
            ) from None
        self._adb = adb
        return adb

    def _open_transport(self) -> AdbDevice:
        from adb_shell.adb_device import AdbDevice, AdbDeviceUsb

        if self._address is not None:
            from bench_runner.devices.adb_tcp import StrictTcpTransport

            host, port = parse_tcp_address(self._address)
            return AdbDevice(StrictTcpTransport(host, port), default_transport_timeout_s=self._connect_timeout_s)
        try:
            return AdbDeviceUsb(serial=self._serial, default_transport_timeout_s=self._connect_timeout_s)
        except adb_errors.InvalidTransportError:
            raise DeviceError(
                "USB devices need adb-shell's USB support: pip install 'adb-shell[usb]' (libusb1); "
                "or connect over Wi-Fi with [connection] address = \"host:port\""
            ) from None
        except (adb_errors.UsbDeviceNotFoundError, *_LINK_ERRORS) as exc:
            raise DeviceError(
                f"no USB device with serial {self._serial} ({_describe(exc)}): plug it in, enable USB debugging, "
                "and compare with the serials `adb devices` lists (a running adb server holds the device: "
                "stop it with `adb kill-server`)"
            ) from None

    def _stop_overdue(self, argv: Sequence[str], timeout: float, pid: int | None) -> None:
        """The command outlived its timeout, or the device went silent: find out which, and raise."""
        self.close()
        try:
            adb = self._connection()
        except DeviceError:
            reason = f"silent for {timeout:g} s, then refused a new connection"
            raise self._lost(f"running `{shlex.join(argv)}`", reason) from None
        if pid is not None:
            try:
                adb.shell(
                    f"kill -9 {pid}",
                    transport_timeout_s=self._connect_timeout_s,
                    read_timeout_s=self._connect_timeout_s,
                )
            except (*_LINK_ERRORS, *_SILENCE_ERRORS) as exc:
                raise self._lost(f"stopping `{shlex.join(argv)}` after its timeout", _describe(exc)) from None
        raise DeviceError(
            f"`{shlex.join(argv)}` did not finish within {timeout:g} s on device {self.name} and was stopped; "
            "raise timeout_seconds in the device profile if the harness is just slow"
        )

    def _lost(self, doing: str, reason: str) -> DeviceError:
        """Drop the broken connection (the next call reconnects) and say what happened."""
        self.close()
        return DeviceError(
            f"device {self.name} ({self.target}) is no longer reachable over adb while {doing} ({reason}): "
            "check the cable or Wi-Fi and `adb devices`"
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _device_reason(exc: BaseException) -> str:
    reason = exc.args[0] if exc.args else exc
    if isinstance(reason, (bytes, bytearray)):
        reason = reason.decode("utf-8", "replace")
    return str(reason).removeprefix("Command failed: ")


def discover(
    addresses: Iterable[str] = (), serials: Iterable[str] = (), *, key_dir: Path | None = None, timeout_s: float = 5.0
) -> list[AndroidDevice]:
    """The devices among `addresses` (TCP "host:port") and `serials` (USB) that accept a connection.

    adb-shell cannot list USB devices without libusb, and there is no adb server to ask,
    so only explicitly named devices are tried; the returned devices are connected.
    """
    candidates = [dict(address=address) for address in addresses] + [dict(serial=serial) for serial in serials]
    reachable = []
    for target in candidates:
        device = AndroidDevice(**target, key_dir=key_dir, connect_timeout_s=timeout_s, auth_timeout_s=timeout_s)
        try:
            reachable.append(device.connect())
        except DeviceError:
            continue
    return reachable


def probe(profile: DeviceProfile, timeout_s: float) -> tuple[str, str]:
    """Whether the device of an android profile answers within `timeout_s`, and what it is."""
    connection = profile.connection
    target = connection.address or connection.serial or "(no address or serial)"
    if connection.address:
        found = discover(addresses=[connection.address], timeout_s=timeout_s)
    elif connection.serial:
        found = discover(serials=[connection.serial], timeout_s=timeout_s)
    else:
        return "invalid", f"{profile.source}: give [connection] address or serial"
    if not found:
        return "unreachable", f"{target}: no answer within {timeout_s:g} s"
    device = found[0]
    try:
        return "ready", f"{target}: {device.info().summary()}"
    except DeviceError as exc:
        return "unreachable", f"{target}: {exc}"
    finally:
        device.close()


def bundle_executorch_root(profile: DeviceProfile) -> Path:
    """The aarch64 executorch package the phone bundle's native runner links: the
    emulated CPU's (`bench_runner.bundle`)."""
    from bench_runner.bundle import bundle_source

    return bundle_source().executorch_root


ANDROID = DeviceKind(
    name=AndroidDevice.kind,
    open=AndroidDevice.from_profile,
    logcat=True,
    probe=probe,
    native_runner=NativeRunner("aarch64", bundle_executorch_root, default=False),
    aarch64_bundle=True,
)
