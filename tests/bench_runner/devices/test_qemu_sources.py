"""The system's apt sources turned into the private arm64 configuration (no network)."""

from pathlib import Path

import pytest

from bench_runner.devices.qemu_setup import (
    AptSource,
    QemuSetupError,
    parse_deb822_sources,
    parse_one_line_sources,
    private_apt_config,
    private_sources,
    read_system_sources,
    render_deb822,
)

ONE_LINE = """\
# the main archive
deb file:///srv/mirror/debian bookworm main contrib  # trailing comment
deb-src file:///srv/mirror/debian bookworm main
deb [arch=amd64,i386 signed-by=/usr/share/keyrings/vendor.gpg] file:///srv/vendor/apt stable main
deb [ trusted=yes ] file:/srv/local-mirror ./
"""

DEB822 = """\
Types: deb deb-src
# file:///srv/snapshot/archive/debian/20250520T000000Z
URIs: file:///srv/mirror/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: file:///srv/vendor/node
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg

Types: deb
URIs: file:///srv/ports/debian
Suites: trixie
Components: main
Enabled: no

Types: deb
URIs: file:///srv/keyed/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_one_line_entries_keep_uri_suite_components_and_map_options():
    sources = parse_one_line_sources(ONE_LINE)
    assert [s.types for s in sources] == [("deb",), ("deb-src",), ("deb",), ("deb",)]
    main = sources[0]
    assert (main.uris, main.suites, main.components) == (
        ("file:///srv/mirror/debian",), ("bookworm",), ("main", "contrib"))
    vendor = sources[2]
    assert vendor.option("architectures") == "amd64 i386"
    assert vendor.option("Signed-By") == "/usr/share/keyrings/vendor.gpg"
    flat = sources[3]
    assert flat.suites == ("./",) and flat.components == () and flat.option("trusted") == "yes"


def test_one_line_entry_without_suite_is_an_error_naming_the_line():
    with pytest.raises(QemuSetupError, match=r"sources.list:2"):
        parse_one_line_sources("deb file:///srv/a/debian bookworm main\ndeb file:///srv/b/debian\n")


def test_deb822_stanzas_skip_comments_and_keep_multiline_values():
    sources = parse_deb822_sources(DEB822)
    assert len(sources) == 4
    assert sources[0].types == ("deb", "deb-src")
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[2].option("Enabled") == "no"
    key = sources[3].option("signed-by")
    assert key.splitlines()[1] == " -----BEGIN PGP PUBLIC KEY BLOCK-----"
    assert key.splitlines()[-1] == " -----END PGP PUBLIC KEY BLOCK-----"


def test_deb822_stanza_without_uris_is_an_error():
    with pytest.raises(QemuSetupError, match="URIs|uris"):
        parse_deb822_sources("Types: deb\nSuites: bookworm\n")


def test_private_sources_keep_binary_entries_usable_for_arm64():
    sources = parse_deb822_sources(DEB822) + parse_one_line_sources(ONE_LINE)
    kept = private_sources(sources, ["arm64", "amd64"])
    uris = [s.uris[0] for s in kept]
    # deb-src dropped, disabled dropped, arch-limited entries narrowed to what is wanted.
    assert "file:///srv/ports/debian" not in uris
    assert all(s.types == ("deb",) for s in kept)
    assert uris.count("file:///srv/mirror/debian") == 2
    node = next(s for s in kept if s.uris[0] == "file:///srv/vendor/node")
    assert node.option("Architectures") == "amd64"
    vendor = next(s for s in kept if s.uris[0] == "file:///srv/vendor/apt")
    assert vendor.option("Architectures") == "amd64"
    assert not any(s.option("Enabled") for s in kept)


def test_private_sources_drop_entries_limited_to_other_architectures():
    only_amd64 = AptSource(("deb",), ("file:///srv/a/",), ("stable",), ("main",), (("Architectures", "amd64"),))
    open_entry = AptSource(("deb",), ("file:///srv/b/",), ("stable",), ("main",))
    assert private_sources([only_amd64, open_entry], ["arm64"]) == [open_entry]


def test_rendered_deb822_parses_back_to_the_same_entries():
    kept = private_sources(parse_deb822_sources(DEB822) + parse_one_line_sources(ONE_LINE), ["arm64", "amd64"])
    assert parse_deb822_sources(render_deb822(kept)) == kept


def test_read_system_sources_reads_list_and_sources_files_only(tmp_path: Path):
    (tmp_path / "sources.list").write_text("deb file:///srv/mirror/debian bookworm main\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(DEB822)
    (parts / "extra.list").write_text("deb file:///srv/extra/debian bookworm main\n")
    (parts / "vendor.list.disabled-by-admin").write_text("deb file:///srv/ignored/ stable main\n")
    uris = [s.uris[0] for s in read_system_sources(tmp_path)]
    assert uris[0] == "file:///srv/mirror/debian"
    assert "file:///srv/extra/debian" in uris and "file:///srv/keyed/debian" in uris
    assert "file:///srv/ignored/" not in uris
    assert len(uris) == 6


def test_private_apt_config_keeps_state_private_and_clears_update_hooks(tmp_path: Path):
    text = private_apt_config(tmp_path, ["arm64", "amd64"])
    assert f'Dir::State::status "{tmp_path}/state/status";' in text
    assert f'Dir::Etc::SourceParts "{tmp_path}/sources.list.d";' in text
    assert 'APT::Architecture "arm64";' in text
    assert 'APT::Architectures { "arm64"; "amd64"; };' in text
    assert "#clear APT::Update::Post-Invoke-Success;" in text
