"""The command line explains itself: a version, and help for every argument of every command with its default."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from rematch_pipeline.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_argument_of_every_command_has_help_naming_its_default() -> None:
    missing, no_default = [], []
    for parser in _parsers(build_parser()):
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if not a.help:
                missing.append(f"{parser.prog} {a.option_strings or a.dest}")
            elif a.default not in (None, False) and not a.required and "default" not in a.help:
                no_default.append(f"{parser.prog} {a.option_strings or a.dest}")
    assert (missing, no_default) == ([], [])


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"rematch {version('rematch-pipeline')}"
