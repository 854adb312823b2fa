"""Every console tool and benchmark explains itself: each option has a help text, and
`--help` shows every default that is set."""
import argparse
import importlib
from pathlib import Path
import subprocess
import sys

import pytest

from env_actor.ros.params import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ['bag_player', 'demo', 'launch_node', 'offline_eval', 'sensor_publisher',
         'sim_record', 'sim_robot_node', 'smoke', 'synthetic_bag', 'train']
BENCHES = sorted(p.stem for p in (ROOT / 'bench').glob('*.py') if p.stem != 'common')


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__('parser captured')
        self.parser = parser


def capture_parser(main, monkeypatch) -> argparse.ArgumentParser:
    """Run `main([])` up to the point where it parses its arguments; return the parser."""
    def stop(self, *args, **kwargs):
        raise _Captured(self)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', stop)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', stop)
    with pytest.raises(_Captured) as info:
        main([])
    return info.value.parser


def bench_main(name: str):
    sys.path.insert(0, str(ROOT / 'bench'))
    try:
        return importlib.import_module(name).main
    finally:
        sys.path.remove(str(ROOT / 'bench'))


def check_parser(parser: argparse.ArgumentParser) -> None:
    text = ' '.join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f'{parser.prog} {name}: no help text'
        if action.default is not None and not isinstance(action.default, bool):
            said = '(default: ' in action.help     # the default in words
            assert said or f'(default: {action.default})' in text, f'{parser.prog} {name}: default'


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_option_has_help_and_its_default(tool, monkeypatch):
    main = importlib.import_module(f'env_actor.tools.{tool}').main
    check_parser(capture_parser(main, monkeypatch))


@pytest.mark.parametrize('bench', BENCHES)
def test_every_benchmark_option_has_help_and_an_out_option(bench, monkeypatch):
    parser = capture_parser(bench_main(bench), monkeypatch)
    check_parser(parser)
    assert '--out' in parser._option_string_actions, f'{bench}: no --out'


def test_check_parser_catches_a_missing_help_or_default():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rate', type=float, default=2.0)
    with pytest.raises(AssertionError, match='--rate: no help text'):
        check_parser(parser)
    parser = argparse.ArgumentParser()
    parser.add_argument('--rate', type=float, default=2.0, help='Hz')
    with pytest.raises(AssertionError, match='--rate: default'):
        check_parser(parser)


def test_node_help_lists_every_parameter_and_starts_no_node():
    done = subprocess.run([sys.executable, '-m', 'env_actor.ros.policy_node', '--help'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('usage: env-actor-node')
    for param in PARAMETERS:
        assert f'  {param.name} ({param.kind}, default {param.default!r})' in done.stdout
    assert 'env_actor' not in done.stderr     # no node logged anything
