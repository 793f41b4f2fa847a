"""What the three jobs share: the user-facing error base, the artifact manifest, the user cache.

`lowering` writes artifacts and their manifests, `bench_runner` measures them and reads
the manifests as data, `deploy` drives both; all three import this package and none of
them imports another through it.
"""
