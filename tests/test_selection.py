"""The first tier's test selection: a static import graph of the tree (verify/selection.py)."""

from __future__ import annotations

from pathlib import Path

from acr_bot.verify.selection import (
    imported,
    is_test_module,
    module_index,
    select_tests,
)

TREE = {
    "src/shop/__init__.py": "from shop.cart import Cart\n",
    "src/shop/cart.py": "from .prices import price\n",
    "src/shop/prices.py": "def price(x):\n    return x\n",
    "src/shop/util/__init__.py": "",
    "src/shop/util/text.py": "",
    "tests/test_cart.py": "from shop.cart import Cart\n",
    "tests/test_prices.py": "import shop.prices as p\n",
    "tests/test_api.py": "from shop import cart\nfrom shop.util import text\n",
    "tests/test_top.py": "import shop\n",  # the package only: not an importer of cart
    "tests/test_other.py": "import os\n# mentions prices and cart in a comment only\n",
    "tests/conftest.py": "from shop.prices import price\n",
    "tests/helpers.py": "from shop.prices import price\n",  # not a test module
    "tests/test_broken.py": "from shop.prices import (\n",  # does not parse
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    "pkg/sub/tests/__init__.py": "",
    "pkg/sub/mod.py": "",
    "pkg/sub/tests/test_mod.py": "from .. import mod\n",
    "pkg/sub/tests/test_rel.py": "from ..mod import thing\n",
}


def select(changed: list[str], **kw: object):
    return select_tests(sorted(TREE), changed, lambda p: TREE.get(p, ""), **kw)  # type: ignore[arg-type]


def test_module_names_follow_the_packages_not_the_folders() -> None:
    index = module_index(TREE)
    assert index["shop.cart"] == "src/shop/cart.py"
    assert index["shop"] == "src/shop/__init__.py"
    assert index["shop.util.text"] == "src/shop/util/text.py"
    assert index["test_cart"] == "tests/test_cart.py"  # tests/ has no __init__.py
    assert index["pkg.sub.tests.test_mod"] == "pkg/sub/tests/test_mod.py"


def test_imports_resolve_relative_forms_and_include_the_parents() -> None:
    assert imported("from .. import mod\n", "pkg.sub.tests.test_mod", False) >= {
        "pkg.sub", "pkg.sub.mod", "pkg"}
    assert imported("from . import x\n", "pkg.sub", True) >= {"pkg.sub.x"}
    assert imported("import a.b.c\n", "t", False) == {"a", "a.b", "a.b.c"}
    assert imported("from .... import x\n", "a.b", False) == set()  # past the top
    assert imported("def broken(:\n", "t", False) == set()


def test_a_change_selects_its_direct_importers_the_one_named_after_it_first() -> None:
    selection = select(["src/shop/prices.py"])
    # test_prices is named after the module; conftest and helpers are not test modules;
    # test_cart imports cart (which imports prices), but only direct importers are selected.
    assert selection.modules == ("tests/test_prices.py",)
    assert selection.changed == ("shop.prices",)
    cart = select(["src/shop/cart.py"])
    assert cart.modules == ("tests/test_cart.py", "tests/test_api.py")
    assert "tests/test_top.py" not in cart.modules and "tests/test_other.py" not in cart.modules


def test_a_changed_package_init_selects_every_importer_of_the_package() -> None:
    selection = select(["src/shop/util/__init__.py"])
    assert selection.modules == ("tests/test_api.py",)
    relative = select(["pkg/sub/mod.py"])
    assert relative.modules == ("pkg/sub/tests/test_mod.py", "pkg/sub/tests/test_rel.py")


def test_named_tests_come_first_and_the_limit_counts_what_it_drops() -> None:
    selection = select(["src/shop/cart.py"], named=["tests/test_x.py::test_y"], limit=1)
    assert selection.named == ("tests/test_x.py::test_y",)
    assert selection.modules == ("tests/test_cart.py",) and selection.dropped == 1


def test_changes_the_graph_cannot_place_select_only_the_named_tests() -> None:
    assert select(["README.md"]).empty
    assert select(["tests/test_cart.py"]).empty  # a test file is not a module under test
    assert select(["docs/conf.py"], named=["tests/test_a.py"]).modules == ()


def test_test_modules_are_what_pytest_and_unittest_collect() -> None:
    assert is_test_module("tests/test_x.py") and is_test_module("a/x_test.py")
    assert is_test_module("tests/files/tests.py")  # django's layout (unittest: test*.py)
    assert not is_test_module("tests/conftest.py") and not is_test_module("tests/helpers.py")


def test_on_a_real_tree_the_graph_is_read_from_disk(tmp_path: Path) -> None:
    for path, text in TREE.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    paths = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py"))
    selection = select_tests(paths, ["src/shop/prices.py"],
                             lambda p: (tmp_path / p).read_text())
    assert selection.modules == ("tests/test_prices.py",)


def test_import_statements_are_found_wherever_they_stand() -> None:
    source = ('"""Doc."""\nimport os\nfrom shop.prices import (\n    price,\n    tax,\n)\n\n\n'
              "def test_late():\n    from shop import cart\n    import shop.util.text as t\n"
              "    x = 'import nothing'\n\nclass C:\n    from . import helper\n")
    found = imported(source, "tests.test_x", False)
    assert {"os", "shop.prices", "shop.prices.price", "shop.cart", "shop.util.text",
            "tests.helper"} <= found
    assert "nothing" not in found
    # A file that does not parse as a whole still shows its imports.
    assert "shop.prices" in imported("from shop.prices import price\ndef broken(:\n", "t", False)


def test_selection_on_the_sympy_and_django_layouts_in_a_git_tree(tmp_path: Path) -> None:
    from acr_bot.gitrepo import git
    from acr_bot.verify.tiers import first_tier

    files = {
        "sympy/__init__.py": "", "sympy/parsing/__init__.py": "",
        "sympy/parsing/sympy_parser.py": "", "sympy/parsing/tests/__init__.py": "",
        "sympy/parsing/tests/test_sympy_parser.py": "from sympy.parsing.sympy_parser import x\n",
        "sympy/core/tests/test_expr.py": "from sympy.parsing.sympy_parser import (\n  x)\n",
        "sympy/core/tests/test_other.py": "from sympy import S\n", "sympy/lonely.py": "",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    [step] = first_tier(tmp_path, sorted(files), ["sympy/parsing/sympy_parser.py"],
                        "python -m pytest -q")
    assert step.command == ("python -m pytest -q sympy/parsing/tests/test_sympy_parser.py "
                            "sympy/core/tests/test_expr.py")
    # git grep finds the name in no test module: nothing to parse, no first tier.
    assert first_tier(tmp_path, sorted(files), ["sympy/lonely.py"], "python -m pytest") == []
