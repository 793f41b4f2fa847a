"""`vitdeploy devices`: the devices vitdeploy can see and the device profiles;
`vitdeploy devices setup qemu-arm64`: build the emulated ARM64 CPU once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SETUP_KINDS = ("qemu-arm64",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list the devices vitdeploy can see and the device profiles; set up the emulated ARM64 CPU",
    )
    parser.add_argument("--profiles", type=Path, metavar="DIR", help="folder of device profiles (default: device_profiles/)")
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, help="seconds to wait for each Android device (default 5)"
    )
    parser.set_defaults(func=list_devices)
    actions = parser.add_subparsers(dest="devices_action", metavar="ACTION")
    setup = actions.add_parser("setup", help="build a device kind's environment once (cached per user)")
    setup.add_argument("kind", choices=SETUP_KINDS)
    setup.add_argument(
        "--with-executorch", action="store_true", help="also install ExecuTorch and torch aarch64 wheels (over 1 GB)"
    )
    setup.set_defaults(func=setup_device)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def _describe(info) -> str:
    return f"{info.abi}, {info.cpu_model}, {info.cores} cores, {info.os}"


def _host_row(profile) -> tuple[str, ...]:
    from bench_runner.devices import open_device

    return ("host", profile.name, "ready", _describe(open_device(profile).info()))


def _qemu_row(profile) -> tuple[str, ...]:
    from bench_runner.devices.base import DeviceError
    from bench_runner.devices import open_device

    try:
        info = open_device(profile).info()
    except DeviceError as exc:
        return ("qemu-arm64", profile.name, "not set up", str(exc))
    return ("qemu-arm64", profile.name, "ready", _describe(info) + " - times are not a phone's")


def _android_row(profile, timeout: float) -> tuple[str, ...]:
    from bench_runner.devices.android import discover
    from bench_runner.devices.base import DeviceError

    connection = profile.connection
    target = connection.address or connection.serial or "(no address or serial)"
    if connection.address:
        found = discover(addresses=[connection.address], timeout_s=timeout)
    elif connection.serial:
        found = discover(serials=[connection.serial], timeout_s=timeout)
    else:
        return ("android", profile.name, "invalid", f"{profile.source}: give [connection] address or serial")
    if not found:
        return ("android", profile.name, "unreachable", f"{target}: no answer within {timeout:g} s")
    device = found[0]
    try:
        return ("android", profile.name, "ready", f"{target}: {_describe(device.info())}")
    except DeviceError as exc:
        return ("android", profile.name, "unreachable", f"{target}: {exc}")
    finally:
        device.close()


def _apple_row(profile) -> tuple[str, ...]:
    if profile.kind == "macos" and sys.platform == "darwin":
        return ("macos", profile.name, "ready", "this Mac: Core ML through coremltools")
    needs = "a Mac with Xcode and a benchmark app" if profile.kind == "ios" else "macOS"
    return (profile.kind, profile.name, "unavailable", f"Core ML prediction needs {needs}; this host runs {sys.platform}")


def list_devices(args: argparse.Namespace) -> int:
    from bench_runner.profiles import KINDS, DeviceProfile, ProfileError, load_profile, profile_paths, PROFILES_DIR

    profiles, broken = [], []
    for path in profile_paths(args.profiles):
        try:
            profiles.append(load_profile(path))
        except ProfileError as exc:
            broken.append((path, exc))
    by_kind = {kind: [p for p in profiles if p.kind == kind] for kind in KINDS}
    for kind in ("host", "qemu-arm64"):
        by_kind[kind] = by_kind[kind] or [DeviceProfile(name=kind, kind=kind)]

    rows = [("KIND", "PROFILE", "STATE", "DETAILS")]
    rows += [_host_row(p) for p in by_kind["host"]]
    rows += [_qemu_row(p) for p in by_kind["qemu-arm64"]]
    rows += [_android_row(p, args.connect_timeout) for p in by_kind["android"]]
    rows += [_apple_row(p) for p in by_kind["macos"] + by_kind["ios"]]
    print("Devices:")
    print(_table(rows))

    print(f"\nProfiles in {args.profiles or PROFILES_DIR}:")
    if profiles:
        profile_rows = [("NAME", "KIND", "THREADS", "CPU MASK", "BACKENDS", "DESCRIPTION")]
        for p in profiles:
            threads = ",".join(str(t) for t in p.measurement.threads)
            profile_rows.append(
                (p.name, p.kind, threads, p.measurement.cpu_mask or "-", ",".join(p.lowering.backends), p.description)
            )
        print(_table(profile_rows))
    else:
        print("  none")
    for path, exc in broken:
        print(f"  invalid: {exc}")
    return 1 if broken else 0


def setup_device(args: argparse.Namespace) -> int:
    from vitdeploy.user_cache import user_cache_dir
    from bench_runner.devices.qemu_setup import setup_qemu_arm64

    env = setup_qemu_arm64(user_cache_dir(), with_executorch=args.with_executorch, log=print)
    print(f"qemu-arm64 ready in {env.root}: QEMU {env.versions.get('qemu', '?')}, Python {env.versions.get('python', '?')}")
    if env.executorch_site_dir is None:
        print("ExecuTorch is not installed for the emulated CPU; add it with --with-executorch (over 1 GB)")
    return 0
