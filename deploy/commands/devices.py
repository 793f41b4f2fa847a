"""`vitdeploy devices`: the devices vitdeploy can see and the device profiles;
`vitdeploy devices setup KIND`: build what a device kind needs, once."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench_runner.devices import DEVICE_KINDS

    parser = subparsers.add_parser(
        "devices",
        help="list the devices vitdeploy can see and the device profiles; set up a device kind",
    )
    parser.add_argument("--profiles", type=Path, metavar="DIR", help="folder of device profiles (default: device_profiles/)")
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, help="seconds to wait for each device to answer (default 5)"
    )
    parser.set_defaults(func=list_devices)
    actions = parser.add_subparsers(dest="devices_action", metavar="ACTION")
    setup = actions.add_parser("setup", help="build a device kind's environment once (cached per user)")
    setup.add_argument("kind", choices=[kind.name for kind in DEVICE_KINDS if kind.setup is not None])
    setup.set_defaults(func=setup_device)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def list_devices(args: argparse.Namespace) -> int:
    from bench_runner.devices import DEVICE_KINDS
    from bench_runner.profiles import PROFILES_DIR, ProfileError, default_profile, load_profile, profile_paths

    profiles, broken = [], []
    for path in profile_paths(args.profiles):
        try:
            profiles.append(load_profile(path))
        except ProfileError as exc:
            broken.append((path, exc))

    rows = [("KIND", "PROFILE", "STATE", "DETAILS")]
    for kind in DEVICE_KINDS:
        of_kind = [p for p in profiles if p.kind == kind.name]
        if not of_kind and kind.always_listed:
            of_kind = [default_profile(kind.name)]
        rows += [(kind.name, p.name, *kind.status(p, args.connect_timeout)) for p in of_kind]
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
    from bench_runner.devices import device_kind

    device_kind(args.kind).setup(print)
    return 0
