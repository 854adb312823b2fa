"""Package metadata: package.xml dependencies, installed data files, README <-> CI."""
from pathlib import Path
import re
import xml.etree.ElementTree as ET

ROOT = Path(__file__).resolve().parent.parent


ROS_PACKAGES = {'rclpy', 'sensor_msgs', 'trajectory_msgs', 'std_msgs', 'std_srvs',
                'diagnostic_msgs', 'lifecycle_msgs', 'rosgraph_msgs', 'rcl_interfaces',
                'builtin_interfaces', 'ament_index_python', 'launch', 'launch_ros',
                'cv_bridge', 'geometry_msgs', 'rosbag2_py'}


def imported_top_level(paths) -> set:
    import ast
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                found |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split('.')[0])
    return found


def test_package_xml_declares_exactly_the_ros_packages_the_code_imports():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3' and root.findtext('name') == 'env_actor'
    exec_deps = {e.text for e in root.findall('exec_depend')}
    code = list((ROOT / 'env_actor').rglob('*.py')) + list((ROOT / 'launch').glob('*.py'))
    # lifecycle_msgs: the node's lifecycle services speak it (through rclpy.lifecycle)
    used = (imported_top_level(code) & ROS_PACKAGES) | {'lifecycle_msgs'}
    declared = exec_deps & ROS_PACKAGES
    assert used == declared, f'imported, not declared: {sorted(used - declared)}; ' \
        f'declared, not imported: {sorted(declared - used)}'
    for dep in ('python3-numpy', 'python3-yaml', 'python3-torch', 'python3-opencv'):
        assert dep in exec_deps, dep
    assert root.find('export/build_type').text == 'ament_python'
    assert (ROOT / 'resource' / 'env_actor').is_file()


def test_setup_installs_launch_config_policies_and_marker():
    text = (ROOT / 'setup.py').read_text()
    for top in ('launch', 'config', 'policies'):
        assert f"tree_data_files('{top}')" in text
        assert (ROOT / top).is_dir()
    assert "'resource/' + PACKAGE_NAME" in text


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    commands = re.findall(r'```(?:bash|sh)\n(.*?)\n```', readme, re.S)
    assert len(commands) >= 2, 'README must start with the demo and test commands'
    test_command = commands[1].strip()
    ci_lines = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(('#', 'set ', 'cd '))]
    assert ci_lines == [test_command]


def test_every_make_target_isolates_dds():
    makefile = (ROOT / 'Makefile').read_text()
    assert 'export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST' in makefile
    assert 'export ROS_DOMAIN_ID' in makefile


def test_a_non_editable_install_finds_its_data_and_runs(tmp_path):
    """`pip install .` (not editable) into a target folder, used from elsewhere: the
    package finds config/ and policies/ in its installed share folder, not the checkout."""
    import subprocess
    import sys
    target = tmp_path / 'site'
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
         '--target', str(target), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    # -I: no PYTHONPATH, no cwd; the installed copy goes first on sys.path (the editable
    # install of the checkout in this venv is only consulted after it)
    code = (f'import sys; sys.path.insert(0, {str(target)!r})\n'
            'import env_actor\n'
            'from env_actor.tools.share import share_path\n'
            'from env_actor.policy.utils.loader import build_ready_bundle\n'
            f'assert env_actor.__file__.startswith({str(target)!r}), env_actor.__file__\n'
            'for parts in (("config", "sim.yaml"), ("policies", "sim_flow", "policy.yaml"),\n'
            '              ("launch", "policy.launch.py")):\n'
            f'    assert str(share_path(*parts)).startswith({str(target)!r}), share_path(*parts)\n'
            'bundle = build_ready_bundle(share_path("policies", "sim_flow", "policy.yaml"))\n'
            'print(type(bundle.policy).__name__)\n')
    run = subprocess.run([sys.executable, '-I', '-c', code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == 'FlowMatchingPolicy'
