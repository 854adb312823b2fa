"""ProcessInferenceWorker: same results as in-process inference, clear start-up errors,
a dead child reported as an error rather than a hang."""
from pathlib import Path
import time

import numpy as np
import pytest

from env_actor.policy.utils.loader import build_policy_bundle
from env_actor.runtime.inference import InferenceRequest, run_inference
from env_actor.runtime.inference_process import ProcessInferenceWorker
from env_actor.tools.smoke import synthetic_input

ACT = Path(__file__).resolve().parent.parent / 'env_actor' / 'policy' / 'policies' / 'act'


def tiny_act(tmp_path: Path) -> Path:
    (tmp_path / 'img.yaml').write_text('type: resnet_encoder\n'
                                       'params: {out_dim: 8, widths: [8], stem_width: 8}\n')
    (tmp_path / 'prop.yaml').write_text('type: mlp\nparams: {in_dim: 4, out_dim: 8}\n')
    (tmp_path / 'dec.yaml').write_text(
        'type: act_decoder\nparams: {action_dim: 2, chunk_size: 6, token_dim: 8, '
        'num_obs_tokens: 2, d_model: 16, depth: 1, heads: 2, ff_dim: 16}\n')
    path = tmp_path / 'act.yaml'
    path.write_text('model:\n  component_config_paths: {image_encoder: img.yaml, '
                    'proprio_encoder: prop.yaml, decoder: dec.yaml}\n'
                    '  checkpoint_path: weights\n'
                    'policy: {type: act, action_chunk_size: 6, action_dim: 2, state_dim: 2, '
                    'proprio_history_size: 2, image_size: [8, 8], cameras: [head], '
                    'warmup_iters: 1}\n')
    return path


def save_weights(path: Path) -> None:
    """Give the bundle a checkpoint so both processes use identical weights."""
    import torch
    from safetensors.torch import save_file
    (path.parent / 'weights').mkdir()
    text = path.read_text()
    path.write_text(text.replace('  checkpoint_path: weights\n', ''))
    torch.manual_seed(0)
    bundle = build_policy_bundle(path)
    for name, module in bundle.components.items():
        save_file(module.state_dict(), str(path.parent / 'weights' / f'{name}.safetensors'))
    path.write_text(text)


def tiny_act_and_expected(tmp_path: Path) -> tuple[Path, dict, np.ndarray]:
    """The tiny ACT bundle with saved weights, a synthetic input and its in-process chunk."""
    path = tiny_act(tmp_path)
    save_weights(path)
    bundle = build_policy_bundle(path)
    data = synthetic_input(bundle.policy.spec, np.random.default_rng(0))
    expected = run_inference(bundle.policy, bundle.normalizer,
                             InferenceRequest(0, data), (6, 2)).chunk
    return path, data, expected


@pytest.mark.parametrize('shared_min_bytes', [0, 1 << 30])    # shared memory / the pipe
def test_process_worker_matches_in_process_inference(tmp_path, shared_min_bytes):
    from multiprocessing import shared_memory
    path, data, expected = tiny_act_and_expected(tmp_path)
    worker = ProcessInferenceWorker(path, 'cpu', (6, 2), guided=False,
                                    shared_min_bytes=shared_min_bytes)
    block = None
    try:
        assert worker.startup_latency_s > 0
        worker.submit(InferenceRequest(0, data), 0)
        assert worker.busy
        deadline = time.monotonic() + 30
        result = None
        while result is None and time.monotonic() < deadline:
            result = worker.poll(0)
            time.sleep(0.005)
        assert result is not None and result.error is None and not worker.busy
        np.testing.assert_allclose(result.chunk, expected, rtol=1e-5, atol=1e-6)
        block = worker._shared.name
        assert (block is not None) == (shared_min_bytes == 0)
        bad = dict(data, head=data['head'][:, :, :4])
        worker.submit(InferenceRequest(1, bad), 1)
        while (result := worker.poll(1)) is None:
            time.sleep(0.005)
        assert result.chunk is None and "input_data['head'] must be" in result.error
    finally:
        worker.close()
    if block is not None:           # the parent unlinked its block
        with pytest.raises(FileNotFoundError):
            shared_memory.SharedMemory(name=block)


def test_process_worker_start_up_error_is_raised(tmp_path):
    path = tiny_act(tmp_path)                     # no weights folder: checkpoint missing
    with pytest.raises(RuntimeError, match=r'inference process failed: .*checkpoint_path` '
                                           r'folder not found'):
        ProcessInferenceWorker(path, 'cpu', (6, 2))


def test_dead_child_becomes_an_error_result(tmp_path):
    path = tiny_act(tmp_path)
    save_weights(path)
    worker = ProcessInferenceWorker(path, 'cpu', (6, 2), guided=False)
    try:
        worker._process.kill()
        worker._process.join(5)
        worker.submit(InferenceRequest(0, {}), 0)
        result = worker.poll(0)
        assert result is not None and 'inference process exited' in result.error
        assert not worker.busy
    finally:
        worker.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.01)


def test_supervisor_restarts_a_killed_and_a_hung_child_then_gives_up(tmp_path):
    """SIGKILL and SIGSTOP of the real child: each is a fault that names its cause, a new
    child serves requests afterwards, the stopped child's late answer is never used, and
    one fault past the bound is final."""
    import os
    import signal
    from env_actor.runtime.supervisor import SupervisedWorker
    path = tiny_act(tmp_path)
    save_weights(path)

    def start():
        return ProcessInferenceWorker(path, 'cpu', (6, 2), guided=False)

    bundle = build_policy_bundle(path)
    data = synthetic_input(bundle.policy.spec, np.random.default_rng(0))
    supervisor = SupervisedWorker(start(), start, timeout_s=0.5, max_restarts=2,
                                  restart_window_s=60.0)
    try:
        assert supervisor.check() is None
        first_pid = supervisor.worker.pid
        os.kill(first_pid, signal.SIGKILL)
        wait_until(lambda: supervisor.check() is not None, 5, 'death detected')
        assert 'inference process died (exit code -9)' in supervisor.fault
        assert supervisor.busy           # nothing may be submitted while it restarts
        wait_until(lambda: supervisor.check() is None, 60, 'restart')
        assert supervisor.worker.pid != first_pid and supervisor.restarts == 1

        os.kill(supervisor.worker.pid, signal.SIGSTOP)
        hung_pid = supervisor.worker.pid
        supervisor.submit(InferenceRequest(7, data), 7)
        wait_until(lambda: supervisor.check() is not None, 5, 'hang detected')
        assert 'inference hung: no result after' in supervisor.fault
        assert supervisor.poll(8) is None        # the stopped child's request is dropped
        wait_until(lambda: supervisor.check() is None, 60, 'second restart')
        assert supervisor.worker.pid not in (first_pid, hung_pid)
        assert not os.path.exists(f'/proc/{hung_pid}')     # killed and reaped
        supervisor.submit(InferenceRequest(9, data), 9)
        results = []
        wait_until(lambda: results.append(supervisor.poll(9)) or results[-1] is not None,
                   30, 'a result from the new child')
        assert results[-1].error is None and results[-1].request.tick == 9

        os.kill(supervisor.worker.pid, signal.SIGKILL)      # third fault: bound is 2
        wait_until(lambda: supervisor.check() is not None, 5, 'third fault')
        assert supervisor.failed and 'giving up' in supervisor.fault
        time.sleep(0.5)
        assert supervisor.check() is not None and supervisor.worker is None
    finally:
        supervisor.close()


def test_every_worker_satisfies_the_inference_worker_protocol(tmp_path):
    from env_actor.runtime.inference import (InferenceWorker, SimulatedInferenceWorker,
                                             ThreadedInferenceWorker)
    from env_actor.runtime.supervisor import SupervisedWorker
    path = tiny_act(tmp_path)
    save_weights(path)
    bundle = build_policy_bundle(path)
    threaded = ThreadedInferenceWorker(bundle.policy, bundle.normalizer, (6, 2))
    simulated = SimulatedInferenceWorker(bundle.policy, bundle.normalizer, (6, 2))
    process = ProcessInferenceWorker(path, 'cpu', (6, 2), guided=False)
    supervised = SupervisedWorker(process, lambda: None, timeout_s=1.0)
    try:
        for worker in (threaded, simulated, process, supervised):
            assert isinstance(worker, InferenceWorker), type(worker).__name__
        assert not isinstance(object(), InferenceWorker)
    finally:
        threaded.close()
        supervised.close()
