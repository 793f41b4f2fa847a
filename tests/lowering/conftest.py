"""Fixtures every lowering test folder shares."""

import pytest

from lowering.cache import ArtifactCache


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory):
    """One artifact cache for the session's lowering tests, apart from the user's."""
    return ArtifactCache(tmp_path_factory.mktemp("artifact-cache"))
