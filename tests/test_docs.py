"""Every docstring example in the package runs (doctest), and the README's Python example too."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import interp

MODULES = sorted(m.name for m in pkgutil.walk_packages(interp.__path__, "interp.")
                 if ".commands." not in m.name and not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_readme_python_example():
    text = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no ```python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
