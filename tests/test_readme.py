"""Every Python block of the README runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


def test_quickstart_is_exactly_the_two_commands():
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quickstart, flags=re.DOTALL)
    assert commands == ["make demo\nmake test\n"]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQM_")}
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, f"README block {index} failed:\n{completed.stderr}"
