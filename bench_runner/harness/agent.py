#!/usr/bin/env python3
"""vitdeploy's portable benchmark agent: a standalone script, run as `python3 agent.py PLAN.json`.

It needs only the standard library, numpy, the portable runtimes module pushed beside it
(`vitdeploy/runtimes.py` as `vitdeploy_runtimes.py`) and the runtime of each artifact
(onnxruntime; executorch with torch; coremltools on macOS), so it runs unchanged on the
host, under an emulated aarch64 Python and on a phone with Python. It never imports the
rest of vitdeploy.

The plan (JSON):
    {"threads": 1, "warmup": 10, "runs": 10, "min_seconds": 0.5, "rounds": 5, "seed": 0,
     "cpu_mask": "f0" (optional), "max_runs": 10000 (optional, per artifact per round),
     "artifacts": [{"id": "a", "path": "model.onnx", "runtime": "onnxruntime",
                    "input_shape": [1, 3, 224, 224], "input_dtype": "float32"}]}

Order of work: pin the CPU mask and set the thread count before anything is loaded;
load each artifact and time its first inference; then alternate the artifacts in rounds
(A B C A B C ...), each round running `warmup` untimed inferences and then at least
`runs` timed inferences and at least `min_seconds` per artifact. CPU frequencies,
temperatures and Linux's CPU pressure counter (/proc/pressure/cpu, with a monotonic
clock to set it against) are read before and after each round where the OS exposes them.

Exactly one JSON line goes to stdout (whatever the runtimes print is sent to stderr):
    {"agent": 1, "threads": 1, "affinity": [...], "peak_rss_kb": ..., "runtime_versions": {...},
     "environment": [{"round": 0, "when": "before", "frequencies_khz": [...], "thermal_c": {...},
                      "cpu_pressure_total_us": 3140732252 or null, "clock_us": ...}],
     "artifacts": [{"id": "a", "runtime": ..., "threads_applied": 1, "load_ms": ...,
                    "first_inference_ms": ..., "memory_kb": ..., "output_checksum": ...,
                    "samples_ms": [...], "round_index": [...], "error": null}]}
A failing artifact carries its `error` and no samples; the others are still measured.
A plan that cannot be read gives {"error": "..."} and exit status 2; a failure outside
any single artifact (such as an impossible CPU mask) gives {"error": "..."} and status 1.
"""

import glob
import json
import os
import platform
import resource
import sys
import time
import traceback

import numpy as np

try:
    import vitdeploy_runtimes as runtimes  # pushed beside this script
except ImportError:  # imported from the installed package (its tests, the benchmarks)
    from vitdeploy import runtimes

AGENT_FORMAT = 1
DEFAULT_MAX_RUNS = 10000


def read_frequencies_khz():
    """Current frequency of each CPU, in CPU order, where cpufreq is exposed."""
    frequencies = []
    paths = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")
    for path in sorted(paths, key=lambda p: int(p.split("/")[5][3:])):
        try:
            with open(path) as handle:
                frequencies.append(int(handle.read().strip()))
        except (OSError, ValueError):
            continue
    return frequencies


def read_thermal_c():
    """Temperature of each thermal zone in degrees Celsius, keyed by the zone's type."""
    readings = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone[0-9]*")):
        try:
            with open(os.path.join(zone, "temp")) as handle:
                millidegrees = int(handle.read().strip())
            with open(os.path.join(zone, "type")) as handle:
                name = handle.read().strip() or os.path.basename(zone)
        except (OSError, ValueError):
            continue
        if name in readings:
            name = name + "@" + os.path.basename(zone)
        readings[name] = millidegrees / 1000.0
    return readings


def cpu_pressure_total_us(text):
    """The `total=` microseconds of the "some" line of /proc/pressure/cpu text, or None."""
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["some"]:
            for field in fields[1:]:
                if field.startswith("total=") and field[6:].isdigit():
                    return int(field[6:])
    return None


def read_cpu_pressure_total_us(path="/proc/pressure/cpu"):
    """Microseconds since boot in which some runnable task waited for a CPU (Linux PSI), or None."""
    try:
        with open(path) as handle:
            return cpu_pressure_total_us(handle.read())
    except OSError:  # no PSI: not Linux, a kernel before 4.20, or booted with psi=0
        return None


def environment_reading(round_number, when):
    pressure = read_cpu_pressure_total_us()
    return {
        "round": round_number,
        "when": when,
        "frequencies_khz": read_frequencies_khz(),
        "thermal_c": read_thermal_c(),
        "cpu_pressure_total_us": pressure,
        "clock_us": time.monotonic_ns() // 1000 if pressure is not None else None,
    }


def resident_kb():
    """Current resident set size in kB (Linux and Android), else the peak so far."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return peak_rss_kb()


def peak_rss_kb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def package_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # metadata can be absent on stripped device installs
        return "unknown"


def pin_cpus(mask):
    """Restrict this process to the CPUs of a hexadecimal mask; return the CPUs in use."""
    if not hasattr(os, "sched_setaffinity"):
        if mask:
            raise OSError("this OS cannot pin a process to CPUs; measure without a CPU mask")
        return []
    if mask:
        bits = int(mask, 16)
        cpus = {cpu for cpu in range(bits.bit_length()) if bits >> cpu & 1}
        os.sched_setaffinity(0, cpus)
    return sorted(os.sched_getaffinity(0))


def make_input(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)


def checksum(output):
    return float(np.asarray(output, dtype=np.float64).sum())


def prepare_runtimes(names, threads):
    """Import each runtime and size its thread pool before any program is loaded.

    Importing here keeps import time out of the first artifact's load time. Returns the
    runtimes that cannot be used, with the reason.
    """
    unusable = {}
    for name in names:
        runtime = runtimes.RUNTIMES.get(name)
        if runtime is None:
            unusable[name] = "unknown runtime %r; the agent knows %s" % (name, ", ".join(runtimes.RUNTIMES))
            continue
        try:
            runtime.prepare(threads)
        except Exception as exc:
            unusable[name] = "the %s runtime is not usable on this device: %s" % (name, error_text(exc))
    return unusable


def runtime_versions(names):
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in names:
        for package in getattr(runtimes.RUNTIMES.get(name), "packages", ()):
            versions[package] = package_version(package)
    return versions


def error_text(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def load_artifacts(plan, unusable):
    """Load each artifact and time its load and first inference; failures become errors."""
    results, models = [], {}
    for spec in plan["artifacts"]:
        result = {"id": spec["id"], "runtime": spec["runtime"], "samples_ms": [], "round_index": [], "error": None}
        results.append(result)
        if spec["runtime"] in unusable:
            result["error"] = unusable[spec["runtime"]]
            continue
        try:
            example = make_input(spec["input_shape"], spec.get("input_dtype", "float32"), plan["seed"])
            resident_before = resident_kb()
            start = time.perf_counter_ns()
            session = runtimes.RUNTIMES[spec["runtime"]].open(spec["path"], plan["threads"])
            loaded = time.perf_counter_ns()
            output = session.run(example)
            done = time.perf_counter_ns()
        except Exception as exc:  # one artifact's failure must not stop the others
            result["error"] = "loading or first inference failed: " + error_text(exc)
            continue
        result.update(
            load_ms=(loaded - start) / 1e6,
            first_inference_ms=(done - loaded) / 1e6,
            memory_kb=max(resident_kb() - resident_before, 0),
            output_checksum=checksum(output),
            threads_applied=session.threads_applied,
        )
        models[spec["id"]] = (session, example)
    return results, models


def time_round(model, warmup, runs, min_seconds, max_runs):
    session, example = model
    for _ in range(warmup):
        session.run(example)
    samples = []
    min_ns = int(min_seconds * 1e9)
    started = time.perf_counter_ns()
    while len(samples) < max_runs and (len(samples) < runs or time.perf_counter_ns() - started < min_ns):
        start = time.perf_counter_ns()
        session.run(example)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def run_plan(plan):
    runtimes = sorted({spec["runtime"] for spec in plan["artifacts"]})
    affinity = pin_cpus(plan.get("cpu_mask"))
    unusable = prepare_runtimes(runtimes, plan["threads"])
    results, models = load_artifacts(plan, unusable)
    by_id = {result["id"]: result for result in results}
    environment = []
    max_runs = plan.get("max_runs", DEFAULT_MAX_RUNS)
    for round_number in range(plan["rounds"]):
        environment.append(environment_reading(round_number, "before"))
        for artifact_id, model in list(models.items()):
            result = by_id[artifact_id]
            try:
                samples = time_round(model, plan["warmup"], plan["runs"], plan["min_seconds"], max_runs)
            except Exception as exc:
                result.update(samples_ms=[], round_index=[], error="round %d failed: %s" % (round_number, error_text(exc)))
                del models[artifact_id]
                continue
            result["samples_ms"].extend(samples)
            result["round_index"].extend([round_number] * len(samples))
        environment.append(environment_reading(round_number, "after"))
    return {
        "agent": AGENT_FORMAT,
        "threads": plan["threads"],
        "affinity": affinity,
        "machine": platform.machine(),
        "peak_rss_kb": peak_rss_kb(),
        "runtime_versions": runtime_versions(runtimes),
        "environment": environment,
        "artifacts": results,
    }


def read_plan(path):
    with open(path) as handle:
        plan = json.load(handle)
    for key in ("threads", "warmup", "runs", "min_seconds", "rounds", "seed", "artifacts"):
        if key not in plan:
            raise ValueError("plan %s lacks %r" % (path, key))
    return plan


def main(argv):
    # Runtimes may print to stdout; keep it for the one JSON line and send the rest to stderr.
    stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if len(argv) != 2:
        stdout.write(json.dumps({"error": "usage: agent.py PLAN.json"}) + "\n")
        return 2
    try:
        plan = read_plan(argv[1])
    except (OSError, ValueError) as exc:
        stdout.write(json.dumps({"error": "cannot read plan: " + error_text(exc)}) + "\n")
        return 2
    try:
        result = run_plan(plan)
    except Exception as exc:  # e.g. a CPU mask naming CPUs the device does not have
        stdout.write(json.dumps({"error": "agent failed: " + error_text(exc)}) + "\n")
        return 1
    sys.stdout.flush()
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
