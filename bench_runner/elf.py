"""What vitdeploy reads out of ELF files: the CPU they are built for and the libraries they load.

    elf_machine(path)        "x86_64", "aarch64", "ELF machine N", or None (not ELF)
    needed_libraries(path)   the DT_NEEDED names of a 64-bit little-endian ELF ([] if none)

Only what building and checking the native runner and the phone bundle need: 64-bit,
little-endian files (every x86_64 and aarch64 Linux binary).
"""

from __future__ import annotations

import struct
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
_CLASS_64 = 2
_LITTLE_ENDIAN = 1
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_DYNAMIC_ENTRY = struct.Struct("<qQ")


def elf_machine(path: Path) -> str | None:
    """The CPU an ELF file is built for ("x86_64", "aarch64", "ELF machine N"); None when
    `path` is not an ELF file."""
    with open(path, "rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    number = int.from_bytes(header[18:20], "little" if header[5] == _LITTLE_ENDIAN else "big")
    return ELF_MACHINES.get(number, f"ELF machine {number}")


def needed_libraries(path: Path) -> list[str]:
    """The shared libraries a 64-bit little-endian ELF file names as DT_NEEDED, in order.

    Raises ValueError for another kind of file.
    """
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size or data[:4] != ELF_MAGIC or data[4] != _CLASS_64 or data[5] != _LITTLE_ENDIAN:
        raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
    fields = _HEADER.unpack_from(data)
    program_offset, entry_size, entries = fields[5], fields[9], fields[10]
    loads, dynamic = [], None
    for index in range(entries):
        kind, _, offset, address, _, file_size, _, _ = _PROGRAM_HEADER.unpack_from(data, program_offset + index * entry_size)
        if kind == _PT_LOAD:
            loads.append((address, offset, file_size))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, file_size)
    if dynamic is None:
        return []
    names, strings_address = [], None
    for position in range(dynamic[0], dynamic[0] + dynamic[1], _DYNAMIC_ENTRY.size):
        tag, value = _DYNAMIC_ENTRY.unpack_from(data, position)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            names.append(value)
        elif tag == _DT_STRTAB:
            strings_address = value
    if not names:
        return []
    strings = _file_offset(loads, strings_address, path)
    return [data[strings + name : data.index(b"\0", strings + name)].decode() for name in names]


def _file_offset(loads: list[tuple[int, int, int]], address: int | None, path: Path) -> int:
    """Where the loaded address `address` lies in the file."""
    for start, offset, size in loads:
        if address is not None and start <= address < start + size:
            return offset + address - start
    raise ValueError(f"{path}: its dynamic string table lies outside every loaded segment")
