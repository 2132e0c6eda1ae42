"""Every command and subcommand of `shopflow` answers --help."""

from __future__ import annotations

import argparse

import pytest

from shopflow.cli import main as cli


def _paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_paths(sub, (*prefix, name)))
    return found


PATHS = _paths(cli.build_parser())


def test_the_command_tree_is_complete() -> None:
    names = {p[0] for p in PATHS if p}
    for expected in ("db", "workspaces", "serve", "worker", "sink", "outbox", "flows", "demo", "privacy"):
        assert expected in names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "shopflow")
def test_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: shopflow")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["teleport"])
    assert exc.value.code == 2
    assert "invalid choice: 'teleport'" in capsys.readouterr().err
