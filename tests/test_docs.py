"""The README and the CLI help must not drift from the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
import typer.main

from pipeline.cli import _register
from pipeline.cli._apps import app

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, click.Command]]:
    _register()
    root = typer.main.get_command(app)
    out: list[tuple[str, click.Command]] = []

    def walk(prefix: str, cmd: click.Command) -> None:
        out.append((prefix, cmd))
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(f"{prefix} {name}", sub)

    walk("mobilize", root)
    return out


@pytest.mark.parametrize("name,cmd", _commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_help_shows_an_example(name: str, cmd: click.Command) -> None:
    assert "Example" in (cmd.help or ""), f"`{name} --help` has no example"


def test_readme_first_screen_gives_the_install_and_test_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:40])
    assert "pip install -e" in first_screen and "mobilize run" in first_screen
    assert "python -m pytest" in first_screen


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    m = re.search(r"^\s*(python -m pytest[^\n]*)$", ci, re.M)
    assert m, ".ci/run does not run the tests"
    assert m.group(1).strip() in README


def test_readme_mentions_every_command() -> None:
    for name, cmd in _commands():
        if name == "mobilize" or isinstance(cmd, click.Group):
            continue
        assert f"`{name}" in README or f"{name} " in README, f"README does not mention `{name}`"


def test_readme_explains_every_dependency() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=\[ ]", d)[0] for d in deps["dependencies"]]
    missing = [n for n in names if n not in README]
    assert not missing, f"README does not explain these dependencies: {missing}"
