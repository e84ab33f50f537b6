import shutil

import pytest

from support import REPO


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def home(tmp_path):
    """A data folder with a copy of the bundled modules and the committed lock."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for wasm in (REPO / "plugins").glob("*.wasm"):
        shutil.copy(wasm, plugins / wasm.name)
    assert any(plugins.iterdir()), "no bundled modules: run `cargo xtask build-plugins`"
    shutil.copy(REPO / "registry.lock", tmp_path / "registry.lock")
    return tmp_path
