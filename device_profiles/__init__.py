"""The shipped device profiles, one TOML file each (package data: see bench_runner.profiles)."""
