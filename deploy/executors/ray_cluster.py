"""The Ray executor: lowering fans out over a cluster, devices are measured in parallel.

What runs where:

- The driver (the `vitdeploy sweep` process) obtains the models (training, checkpoints,
  calibration images), writes the results folder and the report. It alone writes there.
- Each lowering target is one task of one CPU on any node: it lowers into that node's
  content-keyed artifact cache, verifies, evaluates, and returns the artifact, its
  manifest and the accuracy record to the driver, which publishes them in
  `<results>/artifacts/<label>/`. A task retried after its worker died finds its
  artifact in that node's cache.
- Each device is measured by one task holding the custom resource `device:<name>`,
  which only the node the device is attached to declares (`vitdeploy worker --devices`),
  with one unit: one task at a time per device, devices in parallel. Host-CPU devices
  (the host, a Mac, an emulator) also hold as many CPUs as their largest thread count.
  The task gets the artifacts as bytes and appends each configuration's records, as
  soon as they are measured, through a store actor on the driver's node: a retried task
  asks that store which keys are done, so no record is measured twice or lost.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from deploy.config import SweepConfig
from deploy.executors import device_resource
from deploy.executors.transfer import freeze, pack, receive, thaw, unpack
from deploy.sweep_steps import Log, Lowered, LoweringJob, Measured, failure, lower_and_evaluate, measure_device
from vitdeploy.errors import VitdeployError

RETRIES = 3


class TaskLostError(Exception):
    """A Ray task whose worker or node died more often than it is retried."""


class PlacementError(Exception):
    """A device task that no node of the cluster can run."""


class RayExecutor:
    """Runs a sweep's steps as Ray tasks. Joins the cluster `config.executor.address` (or
    $RAY_ADDRESS), or starts a Ray instance of this machine alone with every device of the
    sweep attached; a Ray connection already made in this process is used as it is."""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config
        self.portable = _portable(config)
        self.started = False

    def __enter__(self) -> RayExecutor:
        if not ray.is_initialized():
            address = self.config.executor.address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING,
                         resources={device_resource(_profile(d).name): 1 for d in self.config.devices})
            self.started = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self.started:
            ray.shutdown()

    def lower(self, jobs: Iterable[LoweringJob], evaluated: set[str], log: Log) -> Iterator[Lowered]:
        """One task per target; results are taken in submission order, once every job is
        submitted (models are obtained while the first targets lower)."""
        done = ray.put(evaluated)
        submitted = []
        for job in jobs:
            group = ray.put(freeze(job.group))
            for target in job.group.targets:
                task = _lower_target.remote(self.portable, job.label, group, target, done)
                submitted.append((job.label, target, task))
        log(f"lowering {len(submitted)} target(s) as Ray tasks")
        for label, target, task in submitted:
            yield self._received(label, target, task, log)

    def _received(self, label: str, target, task, log: Log) -> Lowered:
        try:
            lowered, bundles = _result(task)
        except TaskLostError as exc:
            return Lowered(failures=(failure("lower", f"{label} {target}", exc, log),))
        destination = self.config.results / "artifacts" / label
        paths = {str(old): receive(bundle, destination) for old, bundle in zip(lowered.artifacts, bundles)}
        accuracy = tuple(replace(result, artifact_path=str(paths[result.artifact_path])) for result in lowered.accuracy)
        return replace(lowered, artifacts=tuple(paths.values()), accuracy=accuracy)

    def measure(self, artifacts: list[Path], log: Log) -> Iterator[Measured]:
        """One task per device, all submitted at once; a device no node declares, or
        whose node has too few CPUs, is a failed cell."""
        bundles = [(str(path), ray.put(pack(path))) for path in artifacts]
        driver_node = ray.get_runtime_context().get_node_id()
        store = ray.remote(_store_class()).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(driver_node, soft=False),
        ).remote(self.portable.results / "store")
        submitted: list[Measured | tuple[str, object]] = []
        for device in self.config.devices:
            try:
                resources, cpus = self._placement(device)
            except (PlacementError, VitdeployError) as exc:
                submitted.append(Measured(failures=(failure("bench", device, exc, log),)))
                continue
            task = _measure_device.options(resources=resources, num_cpus=cpus).remote(
                self.portable, device, bundles, store, str(self.config.results / "store"))
            submitted.append((device, task))
        try:
            for outcome in submitted:
                yield outcome if isinstance(outcome, Measured) else _measured(*outcome, log)
        finally:
            ray.kill(store)

    def _placement(self, device: str) -> tuple[dict[str, float], int]:
        """The resources of `device`'s task, checked against the live nodes."""
        from bench_runner.devices import device_kind

        profile = _profile(device)
        resource = device_resource(profile.name)
        nodes = [node for node in ray.nodes() if node["Alive"] and resource in node["Resources"]]
        if not nodes:
            raise PlacementError(
                f"no node of the Ray cluster declares device {profile.name!r}: on the machine it is attached to, "
                f"run `vitdeploy worker --devices {profile.name} --address HEAD:6379` "
                f"(or `ray start --address HEAD:6379 --resources '{{\"{resource}\": 1}}'`)")
        kind = device_kind(profile.kind)
        cpus = max(self.config.threads or profile.measurement.threads) if kind.on_host_cpus else 0
        available = max(node["Resources"].get("CPU", 0) for node in nodes)
        if available < cpus:
            raise PlacementError(
                f"device {profile.name!r} is measured at up to {cpus} threads, but the node it is attached to has "
                f"{available:g} CPU(s) for Ray: measure fewer threads ([bench] threads) or give that node more CPUs")
        return {resource: 1}, cpus


@ray.remote(num_cpus=1, max_retries=RETRIES)
def _lower_target(config: SweepConfig, label: str, frozen, target, evaluated: set[str]):
    """Lower and evaluate one target of a group into a private folder; return the
    outcome and the artifacts as bundles (the folder goes with the task)."""
    _quiet_third_party_output()
    group = thaw(frozen)
    job = LoweringJob(label, replace(group, targets=(target,)))
    with tempfile.TemporaryDirectory(prefix="vitdeploy-lower-") as folder:
        lowered = lower_and_evaluate(config, job, Path(folder) / label, evaluated, print)
        return lowered, [pack(path) for path in lowered.artifacts]


@ray.remote(max_retries=RETRIES)
def _measure_device(config: SweepConfig, device: str, bundles: list[tuple[str, object]], store, root: str) -> Measured:
    """Measure on the device attached to this node; records go to the driver's store."""
    _quiet_third_party_output()
    data = ray.get([reference for _, reference in bundles])
    with tempfile.TemporaryDirectory(prefix="vitdeploy-measure-") as folder:
        paths = {}
        for (driver_path, _), bundle in zip(bundles, data):
            local = unpack(bundle, Path(folder) / Path(driver_path).parent.name)
            paths[str(local)] = driver_path
        return measure_device(config, device, [Path(p) for p in paths], _DriverStore(store, root, paths), print)


class _DriverStore:
    """The driver's results store as a device task sees it (what `run_on_profile` uses):
    reads and appends go to the store actor; records name each artifact by its path in
    the results folder, not by the task's private copy."""

    def __init__(self, actor, root: str, paths: dict[str, str]) -> None:
        self.actor = actor
        self.root = root
        self.paths = paths

    def completed_keys(self) -> set[str]:
        return ray.get(self.actor.completed_keys.remote())

    def append(self, records) -> None:
        from vitdeploy.manifest import manifest_path

        named = []
        for record in records:
            path = self.paths[record.artifact_path]
            named.append(replace(record, artifact_path=path,
                                 manifest_path=str(manifest_path(path)) if record.manifest_path else None))
        ray.get(self.actor.append.remote(named))


def _measured(device: str, task, log: Log) -> Measured:
    try:
        return _result(task)
    except TaskLostError as exc:
        return Measured(failures=(failure("bench", device, exc, log),))


def _quiet_third_party_output() -> None:
    from deploy.cli import quiet_third_party_output

    quiet_third_party_output()


def _store_class():
    from bench_runner.store import ResultsStore

    return ResultsStore


def _result(task):
    """The task's return value; a task lost after its retries raises TaskLostError, and
    an exception raised inside the task is raised here as itself."""
    try:
        return ray.get(task)
    except ray.exceptions.RayTaskError:
        raise
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TaskLostError(f"the Ray task was lost after {RETRIES} retries ({type(exc).__name__}): {reason}") from None


def _profile(device: str):
    from bench_runner.profiles import find_profile

    return find_profile(device)


def _portable(config: SweepConfig) -> SweepConfig:
    """`config` with the paths tasks read made absolute: tasks run in other folders."""
    from lowering.data.sources import EMBEDDED

    dataset = config.dataset if config.dataset == EMBEDDED else str(Path(config.dataset).resolve())
    return replace(config, results=config.results.resolve(), dataset=dataset)
