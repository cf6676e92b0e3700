"""The project carries what it reads: shipped datasets, test fixtures, no team-only paths."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from acr_bot.bench import datasets
from acr_bot.bench import runner as bench
from acr_bot.cli import cli
from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TEAM_FOLDER = re.compile(r"\.\./" + "shared" + r"\b|\b" + "shared" + r"/(data|fixtures)\b")


def invoke(*args: object) -> Any:
    return CliRunner().invoke(cli, ["bench", *map(str, args)])


def test_no_tracked_file_refers_to_the_team_folder() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip(f"NOT A GIT CHECKOUT - cannot list the tracked files: {listed.stderr!r}")
    hits = []
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and not name.endswith(".gz"):
            text = path.read_text(errors="replace")
            hits += [f"{name}: {m.group(0)}" for m in TEAM_FOLDER.finditer(text)]
    assert hits == []


def test_the_github_fixtures_live_in_the_repo_with_their_sources() -> None:
    assert FIXTURES.is_relative_to(ROOT / "tests")
    payloads = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json")}
    assert len(payloads) >= 30
    sources = (FIXTURES / "SOURCES.md").read_text()
    assert all(f"`{p}`" in sources for p in payloads), "every payload has its source line"


@pytest.mark.parametrize("name, rows, models", [("swebench-verified", 500, 24),
                                                ("coderouterbench", 10_175, 8)])
def test_named_datasets_are_shipped_compressed(name: str, rows: int, models: int) -> None:
    path = datasets.resolve(name)
    assert path.name == f"{name}.jsonl.gz" and path.read_bytes()[:2] == b"\x1f\x8b"
    loaded = bench.load_rows(path)
    assert len(loaded) == rows
    assert len({m for r in loaded for m in r.outcomes}) == models


def test_the_datasets_readme_says_format_sources_and_licences() -> None:
    text = (Path(str(datasets.resolve("coderouterbench"))).parent / "README.md").read_text()
    for needed in ("## Format", "## Sources and licences", "MIT", "## Reference figures",
                   *datasets.NAMES):
        assert needed in text


def test_bench_reads_jsonl_and_jsonl_gz_alike(tmp_path: Path) -> None:
    plain = tmp_path / "rows.jsonl"
    shutil.copy(Path(__file__).parent / "data" / "synthetic.jsonl", plain)
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    outputs = []
    for path in (plain, packed):
        result = invoke("--dataset", path, "--policies", "cheapest-first,oracle")
        assert result.exit_code == 0, result.output
        outputs.append([re.sub(r"\s[\d.]+\s*$", "", line)  # the seconds column varies
                        for line in result.output.replace(path.name, "FILE").splitlines()])
    assert outputs[0] == outputs[1] and len(outputs[0]) >= 4


def test_a_truncated_gz_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": "x"}\n' * 100)[:30])
    result = invoke("--dataset", path)
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot read {path}")
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_dataset_name_lists_the_shipped_ones() -> None:
    result = invoke("--dataset", "swebench")
    assert result.exit_code == 2
    assert "'swebench' is neither a shipped dataset (coderouterbench, swebench-verified)" \
        in result.output


def test_the_readme_bench_commands_use_dataset_names() -> None:
    named = re.findall(r"acr-bot bench --dataset (\S+)", README)
    assert len(named) >= 4 and set(named) <= set(datasets.NAMES)


@pytest.mark.parametrize("args, readme_row", [
    (["swebench-verified", "--mode", "cascade", "--cost-weight", "0.3"], "86.2% for $29.61"),
    (["coderouterbench", "--subset", "ood", "--mode", "cascade", "--cost-weight", "0.1"],
     "79.0% for $27.47"),
])
def test_the_readme_figures_come_from_the_shipped_data(args: list[str], readme_row: str) -> None:
    """The hindsight oracle depends on the data alone: the shipped files are the README's."""
    assert any(line.startswith("| oracle †") and readme_row in line
               for line in README.splitlines())
    result = invoke("--dataset", *args, "--policies", "oracle")
    assert result.exit_code == 0, result.output
    rate, cost = readme_row.split(" for ")
    line = next(line for line in result.output.splitlines() if line.startswith("oracle"))
    assert rate in line and cost in line


@pytest.mark.slow
def test_an_installed_wheel_finds_the_datasets(tmp_path: Path) -> None:
    """Not the editable checkout: build a wheel, install it into a folder, load by name."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "acr_bot", src / "acr_bot",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
                    src], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("acr_bot-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if "/datasets/" in n}
    assert {f"acr_bot/bench/datasets/{n}.jsonl.gz" for n in datasets.NAMES} <= shipped
    assert "acr_bot/bench/datasets/README.md" in shipped
    subprocess.run([*pip, "install", "--no-deps", "--target", tmp_path / "site", wheel],
                   check=True, capture_output=True)
    # -S and cwd: neither the editable install's finder nor the checkout can answer instead.
    probe = ("import acr_bot.bench.datasets as d, gzip; p = d.resolve('swebench-verified'); "
             "print(p); print(len(gzip.decompress(p.read_bytes()).splitlines()))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site")}, check=True).stdout
    assert out.splitlines() == [str(tmp_path / "site/acr_bot/bench/datasets/"
                                    "swebench-verified.jsonl.gz"), "500"]
