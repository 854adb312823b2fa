"""The README's "Adding a policy" example, exactly as printed, in the place it names."""
from pathlib import Path
import re
import shutil
import subprocess
import sys

ROOT = Path(__file__).resolve().parent.parent


def readme_blocks() -> list:
    text = (ROOT / 'README.md').read_text()
    section = text[text.index('## Adding a policy'):text.index('### Shapes')]
    return re.findall(r'```(python|yaml)\n(.*?)```', section, re.S)


def test_readme_policy_example_builds_and_runs_as_printed():
    blocks = readme_blocks()
    assert [kind for kind, _ in blocks] == ['python', 'yaml', 'yaml']
    written = []
    target = ROOT / 'env_actor' / 'policy' / 'policies' / 'your_policy'
    assert not target.exists(), f'{target} exists already; remove it'
    try:
        for _, body in blocks:
            path = ROOT / body.splitlines()[0].lstrip('# ').strip()    # first line: its path
            assert path.is_relative_to(target), path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            written.append(path)
        yaml_path = target / 'your_policy.yaml'
        build = subprocess.run(
            [sys.executable, '-c', 'from env_actor.policy import build_policy; '
             f'p = build_policy({str(yaml_path)!r}); print(type(p).__name__)'],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert build.returncode == 0 and build.stdout.strip() == 'YourPolicy', build.stderr
        smoke = subprocess.run([str(Path(sys.executable).parent / 'env-actor-smoke'),
                                '--policy-yaml', str(yaml_path), '--guided'],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert smoke.returncode == 0, smoke.stderr[-2000:]
        assert 'action chunk: shape (10, 4) dtype float32' in smoke.stdout, smoke.stdout
    finally:
        shutil.rmtree(target, ignore_errors=True)
