"""Dependencies point one way: base <- models <- policy <- runtime <- ros, tools."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / 'env_actor'
LAYER = {'base': 0, 'models': 1, 'policy': 2, 'runtime': 3, 'ros': 4, 'tools': 5}


def imports_of(path: Path) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        found |= {n.split('.')[1] for n in names if n.startswith('env_actor.')}
    return found


def test_no_package_imports_a_package_above_it():
    wrong = []
    for path in ROOT.rglob('*.py'):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2 or parts[0] not in LAYER:
            continue
        for target in imports_of(path):
            if target in LAYER and LAYER[target] > LAYER[parts[0]]:
                wrong.append(f'{path.relative_to(ROOT)} imports env_actor.{target}')
    assert not wrong, wrong


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob('*/__init__.py')}
    assert packages == set(LAYER), packages ^ set(LAYER)


def test_the_runtime_core_and_the_image_decoders_need_no_ros():
    import subprocess
    import sys
    code = ('import sys, pkgutil, importlib, env_actor.runtime as r\n'
            'for m in pkgutil.iter_modules(r.__path__):\n'
            '    importlib.import_module("env_actor.runtime." + m.name)\n'
            'print(sorted(n for n in sys.modules if n.split(".")[0] in '
            '("rclpy", "sensor_msgs", "std_msgs", "trajectory_msgs", "rcl_interfaces", '
            '"diagnostic_msgs")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]', out.stdout
