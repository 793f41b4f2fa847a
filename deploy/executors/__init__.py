"""Where a sweep's steps run.

An executor is a context manager with two methods, both yielding in the order given:

- `lower(jobs, evaluated, log)`: a `deploy.sweep_steps.Lowered` per lowering job, with
  the artifacts published in the results folder (`<results>/artifacts/<label>/`);
  `evaluated` holds the sha256 of artifacts whose accuracy the results folder has.
- `measure(artifacts, log)`: a `deploy.sweep_steps.Measured` per device of the sweep,
  whose records are then in `<results>/store`, measured with the store's resume rules.

`LocalExecutor` runs them in this process, one after another; `RayExecutor`
(`deploy.executors.ray_cluster`) as Ray tasks over a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vitdeploy.errors import VitdeployError

if TYPE_CHECKING:
    from deploy.config import SweepConfig

EXECUTORS = ("local", "ray")
INSTALL_RAY = "pip install 'vitdeploy[ray]'"


class RayMissingError(VitdeployError):
    """The Ray executor was asked for, but Ray is not installed."""


def device_resource(name: str) -> str:
    """The Ray resource that marks the node a device (profile `name`) is attached to."""
    return f"device:{name}"


def require_ray(what: str = "--executor ray"):
    """The `ray` module, or an error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayMissingError(f"{what} needs Ray, an optional dependency of vitdeploy: {INSTALL_RAY}") from None
    return ray


def open_executor(config: SweepConfig):
    """The executor `config.executor` names, not yet entered."""
    if config.executor.kind == "ray":
        require_ray()
        from deploy.executors.ray_cluster import RayExecutor

        return RayExecutor(config)
    from deploy.executors.local import LocalExecutor

    return LocalExecutor(config)
