"""Reading ELF headers and dynamic sections: the CPU a file is for and the libraries it needs."""

import shutil
import sys
from pathlib import Path

import pytest

from bench_runner.elf import elf_machine, needed_libraries


def test_the_interpreter_is_an_elf_file_of_this_cpu_that_needs_libc():
    executable = Path(sys.executable).resolve()
    assert elf_machine(executable) in ("x86_64", "aarch64")
    shell = Path(shutil.which("sh")).resolve()
    assert "libc.so.6" in needed_libraries(shell)


def test_a_file_that_is_not_elf_is_said_to_be_none(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert elf_machine(script) is None
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        needed_libraries(script)


def test_a_truncated_header_is_not_elf(tmp_path):
    stub = tmp_path / "stub"
    stub.write_bytes(b"\x7fELF\x02\x01")
    assert elf_machine(stub) is None
