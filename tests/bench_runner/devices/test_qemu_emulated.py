"""The emulated ARM64 CPU for real: built once into the user cache (network on the first run)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench_runner.devices.base import DeviceError
from vitdeploy.user_cache import user_cache_dir
from bench_runner.devices.qemu import QemuArm64Device
from bench_runner.devices.qemu_setup import STAMP_NAME, setup_qemu_arm64

pytestmark = pytest.mark.qemu

RUN_ONNX = """\
import json, sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(1, 8)
print(json.dumps(session.run(None, {"x": x})[0].tolist()))
"""


@pytest.fixture(scope="session")
def qemu_env():
    return setup_qemu_arm64(user_cache_dir(), log=lambda line: None)


@pytest.fixture
def device(qemu_env):
    device = QemuArm64Device(qemu_env)
    yield device
    device.cleanup()


def tiny_onnx_model(path: Path) -> Path:
    """MatMul + Add + Softmax on a [1, 8] input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["m"]),
            helper.make_node("Add", ["m", "B"], ["a"]),
            helper.make_node("Softmax", ["a"], ["y"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_second_setup_reuses_the_first(qemu_env):
    stamp = (qemu_env.root / STAMP_NAME).read_text()
    again = setup_qemu_arm64(qemu_env.root.parent, log=lambda line: pytest.fail(f"rebuilt: {line}"))
    assert again == qemu_env
    assert (qemu_env.root / STAMP_NAME).read_text() == stamp
    assert not [p for p in qemu_env.root.parent.iterdir() if p.name.startswith(".qemu-arm64-")]


def test_sysroot_has_arm_cpuinfo_and_no_links_out_of_it(qemu_env):
    assert "CPU implementer\t: 0x41" in (qemu_env.sysroot / "proc/cpuinfo").read_text()
    absolute = [p for p in qemu_env.sysroot.rglob("*") if p.is_symlink() and os.readlink(p).startswith("/")]
    assert absolute == []
    stamp = json.loads((qemu_env.root / STAMP_NAME).read_text())
    assert stamp["wheels"]["onnxruntime"] == qemu_env.versions["onnxruntime"]


def test_python_runs_as_aarch64(device):
    result = device.run(["python3", "-c", "import platform, sys; print(platform.machine(), sys.version_info[:2])"], 120)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[0] == "aarch64"


def test_tiny_onnx_model_matches_the_host(device, tmp_path: Path):
    import onnxruntime as ort

    model = tiny_onnx_model(tmp_path / "tiny.onnx")
    script = tmp_path / "run_onnx.py"
    script.write_text(RUN_ONNX)
    device.push(model, "tiny.onnx")
    device.push(script, "run_onnx.py")
    result = device.run(["python3", "run_onnx.py", "tiny.onnx"], 300)
    assert result.exit_code == 0, result.stderr
    emulated = np.array(json.loads(result.stdout.strip().splitlines()[-1]), dtype=np.float32)

    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(1, 8)
    host = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(emulated, host, rtol=0, atol=1e-6)


def test_a_hanging_program_is_killed_and_reported(device):
    with pytest.raises(DeviceError, match="did not finish within 3 s"):
        device.run(["python3", "-c", "import time; time.sleep(120)"], 3)
