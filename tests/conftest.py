"""Shared fixtures: temp folders for op builds, tiny configs, paths."""

import os
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), 'shared')

# Custom-op builds go to a temp folder, never to the user's home.
os.environ.setdefault('PADDLE_EXTENSION_DIR',
                      tempfile.mkdtemp(prefix='paddleseg_ext_'))


@pytest.fixture
def write_yaml(tmp_path):
    """Write a YAML text to tmp_path/<name> and return its path."""

    def _write(name, text):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    return _write
