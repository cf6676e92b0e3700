"""The small buggy project most fix-loop tests use: `mul` adds instead of multiplying."""

from __future__ import annotations

from acr_bot.fixing.edits import format_edits, make_edits

CALC = '''\
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a + b
'''
FIXED = CALC.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b")
WRONG = CALC.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b + 1")
WRONG2 = CALC.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b - 1")
TESTS = '''\
import pytest

from calc import add, mul, sub


def test_add():
    assert add(2, 3) == 5


def test_sub():
    assert sub(5, 3) == 2


def test_mul():
    assert mul(3, 4) == 12
'''
FILES = {
    "calc.py": CALC,
    "tests/test_calc.py": TESTS,
    "pytest.ini": "[pytest]\ntestpaths = tests\npythonpath = .\n",
    ".gitignore": "__pycache__/\n",
}
TITLE = "mul() returns the wrong product"
TASK = f"""{TITLE}

tests/test_calc.py::test_mul fails: `mul(3, 4)` gives 7 instead of 12.
"""


def reply(path: str, old: str | None, new: str, note: str = "Here is the change.") -> str:
    """A model reply: an explanation, then correct edit blocks turning `old` into `new`."""
    return f"{note}\n\n{format_edits(make_edits(path, old, new))}"


FIX = reply("calc.py", CALC, FIXED, "Multiply instead of adding.")
WRONG_FIX = reply("calc.py", CALC, WRONG, "Multiply, plus one.")
WRONG_FIX2 = reply("calc.py", CALC, WRONG2, "Multiply, minus one.")
