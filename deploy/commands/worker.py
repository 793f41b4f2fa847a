"""`vitdeploy worker --devices pixel-7,host [--address HEAD:6379]`: this machine joins
(or, without --address, starts) the Ray cluster of `vitdeploy sweep --executor ray`,
declaring the devices attached to it."""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_PORT = 6379


def device_list(text: str) -> tuple[str, ...]:
    """Parse "pixel-7,host" into ("pixel-7", "host")."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise argparse.ArgumentTypeError("expected device profile names such as pixel-7,host")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a Ray node for `vitdeploy sweep --executor ray`, declaring the devices attached here",
        description="Runs `ray start` on this machine with one custom resource `device:NAME` per device "
        "attached here, so that the sweep measures each device on this machine, one task at a time. Without "
        "--address this machine becomes the cluster's head; give its address to the other machines' "
        "`vitdeploy worker --address` and to the sweep (`[executor] address`, or RAY_ADDRESS). Runs until "
        "stopped (Ctrl-C). Lowering tasks run on every node; a node without devices: --devices none.",
    )
    parser.add_argument("--devices", type=device_list, required=True, metavar="NAMES",
                        help="comma-separated device profiles attached to this machine (e.g. pixel-7,host), "
                        "or none")
    parser.add_argument("--address", metavar="HOST:PORT", help="the head node to join (default: start a head here)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the head's port (default {DEFAULT_PORT})")
    parser.add_argument("--num-cpus", type=int, metavar="N", help="CPUs this node offers to tasks (default: all)")
    parser.set_defaults(func=run)


def ray_start_command(devices: tuple[str, ...], address: str | None, port: int = DEFAULT_PORT,
                      num_cpus: int | None = None) -> list[str]:
    """The `ray start` command line of a node with `devices` (profile names) attached."""
    from deploy.executors import device_resource

    resources = {device_resource(name): 1 for name in devices}
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               "--resources", json.dumps(resources)]
    command += ["--address", address] if address else ["--head", "--port", str(port), "--include-dashboard=false"]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    return command


def run(args: argparse.Namespace) -> int:
    import os
    import shlex

    from bench_runner.profiles import find_profile
    from deploy.executors import require_ray

    require_ray("vitdeploy worker")
    names = () if args.devices == ("none",) else tuple(find_profile(device).name for device in args.devices)
    command = ray_start_command(names, args.address, args.port, args.num_cpus)
    print(f"devices attached here: {', '.join(names) or 'none'}")
    print(f"running: {shlex.join(command)}", flush=True)
    os.execv(command[0], command)
