"""`tickparity --version`, and every command's --help: each flag explained, one example."""

import argparse
import importlib.metadata
import shlex
import subprocess

import pytest

from modes.cli import build_parser, main, sub_parsers

COMMANDS = [path for path, _ in sub_parsers(build_parser())]


def test_every_command_is_walked():
    assert {"tickparity", "backtest", "data", "data import", "data ls", "data check", "data export",
            "data generate", "report", "audit", "audit verify"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_every_flag_and_ends_with_an_example(capsys, command):
    parser = dict(sub_parsers(build_parser()))[command]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, f"{command}: {action.option_strings or action.dest} has no help text"
    argv = [] if command == "tickparity" else command.split()
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    example = text.rsplit("Example:\n", 1)
    assert len(example) == 2, f"{command} --help has no example"
    assert example[1].strip().startswith("tickparity ")
    for action in parser._actions:
        for flag in action.option_strings:
            assert flag in text


def test_examples_parse():
    """Each example is a valid command line of its own command."""
    from modes.cli import EXAMPLES

    parser = build_parser()
    for path, example in EXAMPLES.items():
        for line in example.split("|"):
            argv = shlex.split(line)[1:]  # as a shell reads it (quoted words)
            if argv:
                parser.parse_args(argv)
        assert path == "tickparity" or example.startswith(f"tickparity {path}")


def test_version(tickparity_bin, root):
    done = subprocess.run([tickparity_bin, "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    line = done.stdout.strip()
    assert line.startswith(f"tickparity {importlib.metadata.version('tickparity')}")
    assert "Python 3." in line and "numba " in line and "numpy " in line
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert f"git {head.stdout.strip()[:12]}" in line


def test_log_level_is_accepted_after_every_subcommand():
    """`tickparity emulator --log-level error ...` (docs/emulator.md) was `unrecognized
    arguments`: only the form before the command worked. Every (sub)command takes it now,
    and the value given there wins; the top-level one stands when it is not repeated."""
    from modes.cli import build_parser

    parser = build_parser()

    def commands(sub, path):
        for name, child in sub.choices.items():
            nested = [a for a in child._actions if a.__class__.__name__ == "_SubParsersAction"]
            if nested:
                yield from commands(nested[0], [*path, name])
            else:
                yield [*path, name], child

    for path, child in commands(parser._subparsers._group_actions[0], []):
        assert "--log-level" in child._option_string_actions, path
    args = parser.parse_args(["emulator", "--log-level", "error", "--data", "synthetic:1"])
    assert args.log_level == "error"
    assert parser.parse_args(["--log-level", "info", "emulator"]).log_level == "info"
    assert parser.parse_args(["emulator"]).log_level == "warning"
