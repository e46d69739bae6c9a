"""Every ```python block of the README's Python section runs, in order, in a fresh interpreter from the
repository root (as a reader would paste it)."""

import re
import subprocess
import sys

import pytest

from conftest import SOURCE_DIR, STORIES, require_path


def python_section_blocks():
    readme = (SOURCE_DIR / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_python_examples():
    assert len(python_section_blocks()) >= 3


def test_readme_python_examples_run():
    require_path(STORIES / "stories260K.bin")
    import jagged
    for i, block in enumerate(python_section_blocks()):
        result = subprocess.run([sys.executable, "-c", block], cwd=SOURCE_DIR, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"README python block {i} failed:\n{block}\n{result.stderr}"
