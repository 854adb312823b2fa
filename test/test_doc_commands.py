"""Every command block in README.md and docs/*.md runs as written.

Each ```bash block is preceded by an annotation that says how it is checked:

    <!-- doc-test: run ["OLD" "NEW" ...] -->   run each command; it must exit 0. Pairs
                                                of strings are replaced first (shorter
                                                runs: `--episodes 100` -> `--episodes 2`)
    <!-- doc-test: service "REGEX" -->           each command is a long-running process:
                                                wait for REGEX in its output, SIGINT it,
                                                it must exit 0
    <!-- doc-test: background "REGEX" [...] --> the first command runs as a service while
                                                the others run to completion
    <!-- doc-test: slow REASON -->              run only with ENV_ACTOR_SLOW_DOCS=1
    <!-- doc-test: skip REASON -->              not runnable here (needs a ROS install...)

A block without an annotation fails the test. Commands run in a scratch folder that
links to every top-level entry of the repository, so relative paths work and nothing
they write lands in the repository; `/tmp/` is replaced by a scratch folder of its own.
"""
import os
from pathlib import Path
import re
import shlex
import signal
import subprocess
import threading
import time

import pytest

from ros_harness import next_domain

ROOT = Path(__file__).resolve().parents[1]
DOCS = ['README.md'] + sorted(f'docs/{p.name}' for p in (ROOT / 'docs').glob('*.md'))
BLOCK = re.compile(r'(?:<!-- doc-test: (?P<note>.*?) -->\n)?```(?:bash|sh)\n(?P<body>.*?)```',
                   re.S)
SERVICE_WAIT_S = 180.0


def blocks(doc: str) -> list[tuple[str, list[str], str]]:
    """(mode, arguments, body) of every shell block of `doc`, in order."""
    found = []
    for match in BLOCK.finditer((ROOT / doc).read_text(encoding='utf-8')):
        note = match.group('note')
        if note is None:
            first = match.group('body').strip().splitlines()[0]
            raise AssertionError(f'{doc}: block "{first}" has no <!-- doc-test: ... -->')
        mode, _, rest = note.partition(' ')
        assert mode in ('run', 'service', 'background', 'slow', 'skip'), f'{doc}: {note}'
        found.append((mode, shlex.split(rest) if mode != 'skip' else [rest],
                      match.group('body')))
    return found


def commands(body: str) -> list[str]:
    """Commands of a block: continuation lines joined, comment lines dropped."""
    joined = re.sub(r'\s*\\\n\s*', ' ', body)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith('#')]


def scratch(tmp_path: Path) -> Path:
    """A working folder whose entries link to the repository's top level (but `out/`)."""
    work = tmp_path / 'work'
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ('out', '.git'):
            (work / entry.name).symlink_to(entry)
    return work


def run_command(command: str, work: Path, env: dict) -> subprocess.CompletedProcess:
    if command.startswith('make '):
        # a `make` in the scratch folder must not (re)install the environment: pip would
        # write the scratch path into .venv's scripts
        stale = subprocess.run(['make', '-q', '.venv/.env_actor_stamp'], cwd=ROOT, env=env)
        assert stale.returncode == 0, 'the environment is out of date: run `make setup` first'
    result = subprocess.run(['bash', '-c', command], cwd=work, env=env, text=True,
                            capture_output=True, timeout=240)
    assert result.returncode == 0, f'{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}'
    return result


class Service:
    """A long-running documented command: started, awaited by a log pattern, SIGINT."""

    def __init__(self, command: str, work: Path, env: dict, pattern: str) -> None:
        self.command = command
        self.output: list[str] = []
        self.proc = subprocess.Popen(['bash', '-c', f'exec {command}'], cwd=work, env=env,
                                     text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + SERVICE_WAIT_S
        while not re.search(pattern, ''.join(self.output)):
            assert self.proc.poll() is None, f'{command} exited:\n{"".join(self.output)}'
            assert time.monotonic() < deadline, f'{command}: no {pattern!r} in\n' \
                                                f'{"".join(self.output)}'
            time.sleep(0.1)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        """SIGINT, as Ctrl-C would; the command must exit 0 with no traceback."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=5)
        text = ''.join(self.output)
        assert code == 0, f'{self.command}: exit {code} after SIGINT\n{text[-3000:]}'
        assert 'Traceback' not in text, text


def replaced(body: str, pairs: list[str], tmp: Path) -> str:
    assert len(pairs) % 2 == 0, f'replacements come in pairs: {pairs}'
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in body, f'{old!r} is not in the block'
        body = body.replace(old, new)
    return body.replace('/tmp/', f'{tmp}/')


@pytest.mark.parametrize('doc', DOCS)
def test_every_documented_command_block_runs(doc, tmp_path):
    found = blocks(doc)
    work, tmp = scratch(tmp_path), tmp_path / 'tmp'
    tmp.mkdir()
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_domain()))
    ran = 0
    for mode, args, body in found:
        if mode == 'skip' or (mode == 'slow' and not os.environ.get('ENV_ACTOR_SLOW_DOCS')):
            continue
        if mode in ('run', 'slow'):
            for command in commands(replaced(body, args if mode == 'run' else [], tmp)):
                run_command(command, work, env)
        elif mode == 'service':
            for command in commands(replaced(body, [], tmp)):
                Service(command, work, env, args[0]).stop()
        else:   # background: the first command serves the others
            first, *rest = commands(replaced(body, args[1:], tmp))
            service = Service(first, work, env, args[0])
            try:
                for command in rest:
                    run_command(command, work, env)
            finally:
                service.stop()
        ran += 1
    assert ran or all(mode in ('skip', 'slow') for mode, _, _ in found)


def test_the_block_parser_finds_blocks_and_refuses_an_unannotated_one(tmp_path, monkeypatch):
    assert [mode for mode, _, _ in blocks('README.md')][:2] == ['slow', 'skip']
    assert commands('a \\\n   --b c\n# note\nd\n') == ['a --b c', 'd']
    doc = tmp_path / 'x.md'
    doc.write_text('text\n```bash\nmake everything\n```\n')
    monkeypatch.setattr(__import__(__name__), 'ROOT', tmp_path)
    with pytest.raises(AssertionError, match='block "make everything" has no'):
        blocks('x.md')
