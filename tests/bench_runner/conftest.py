"""Artifacts shared by the bench-runner tests."""

from __future__ import annotations

import pytest

from tests.bench_runner.tiny_artifacts import write_tiny_onnx, write_tiny_pte


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="session")
def broken_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "broken.onnx"
    path.write_bytes(b"this is not an ONNX model")
    return path


@pytest.fixture(scope="session")
def tiny_pte(tmp_path_factory):
    return write_tiny_pte(tmp_path_factory.mktemp("pte") / "tiny.pte")
