"""`flow_matching`: a flow-matching action-chunk policy with RTC guided inference.

Convention: tau = 0 is noise, tau = 1 is data; `predict` integrates dA/dtau = v(A, o, tau)
from Gaussian noise with `num_steps` Euler steps of 1/n. `guided_inference` adds ΠGDM
inpainting guidance towards `prev_action` inside the ODE (docs/runtime.md):
    A1_hat = A_tau + (1 - tau) v(A_tau, o, tau)
    g      = ((Y - A1_hat) * W)^T dA1_hat/dA_tau          (one vector-Jacobian product)
    v'     = v + min(beta, (1 - tau) / (tau r2)) g,  r2 = (1-tau)^2 / (tau^2 + (1-tau)^2)
with Y = normalised prev_action and W the soft mask for (H, s, est_delay). Autograd is
enabled for the vjp only with respect to A_tau: parameters never get .grad.

Training-time RTC (`guided_method: prefix`, Black et al. 2025, arXiv 2512.05964): the
velocity network takes a flow time per action token; the first d = est_delay actions are
the executed prefix, held clean (time 1) at every integration step, the rest integrate
from noise. No vector-Jacobian product: the same cost as `predict`. Only for a bundle
trained that way (`env-actor-train --rtc-prefix` writes `prefix_trained: true`).

YAML keys: num_steps (10), max_guidance_weight (beta, 5.0), soft_mask_schedule (exp),
noise_seed (null = fresh noise each call; an int = the same noise every call),
guided_method (guidance | prefix), prefix_trained (false).
"""
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.policy.utils.torch_policy import TorchChunkPolicy
from env_actor.base.soft_mask import SCHEDULES, soft_mask_weights


GUIDED_METHODS = ('guidance', 'prefix')


def guidance_weight(tau: float, beta: float) -> float:
    """min(beta, (1 - tau) / (tau r2)); beta at tau = 0."""
    if tau <= 0.0:
        return beta
    r2 = (1.0 - tau) ** 2 / (tau ** 2 + (1.0 - tau) ** 2)
    if r2 == 0.0:
        return beta
    return min(beta, (1.0 - tau) / (tau * r2))


@POLICY_REGISTRY.register('flow_matching')
class FlowMatchingPolicy(TorchChunkPolicy):
    """Components: image_encoder (or image_encoder_<cam>), proprio_encoder, velocity."""

    head_name = 'velocity'

    def __init__(self, components: dict[str, nn.Module], num_steps: int = 10,
                 max_guidance_weight: float = 5.0, soft_mask_schedule: str = 'exp',
                 noise_seed: Optional[int] = None, guided_method: str = 'guidance',
                 prefix_trained: bool = False, **kwargs: Any) -> None:
        super().__init__(components, **kwargs)
        if guided_method not in GUIDED_METHODS:
            raise ValueError(f'flow_matching: guided_method must be one of {GUIDED_METHODS}, '
                             f'got {guided_method!r}')
        if guided_method == 'prefix' and not prefix_trained:
            raise ValueError("flow_matching: guided_method 'prefix' needs a bundle trained "
                             'with prefix conditioning (env-actor-train --rtc-prefix, which '
                             "writes prefix_trained: true); use 'guidance' for this one")
        if num_steps < 1:
            raise ValueError(f'flow_matching: num_steps must be >= 1, got {num_steps}')
        if max_guidance_weight < 0:
            raise ValueError(f'flow_matching: max_guidance_weight must be >= 0, got '
                             f'{max_guidance_weight}')
        if soft_mask_schedule not in SCHEDULES:
            raise ValueError(f'flow_matching: soft_mask_schedule must be one of {SCHEDULES}, '
                             f'got {soft_mask_schedule!r}')
        self.num_steps = int(num_steps)
        self.beta = float(max_guidance_weight)
        self.schedule = soft_mask_schedule
        self.noise_seed = noise_seed
        self.guided_method = guided_method

    def initial_noise(self) -> torch.Tensor:
        generator = None
        if self.noise_seed is not None:
            generator = torch.Generator(device='cpu').manual_seed(int(self.noise_seed))
        shape = (1, self.spec.action_chunk_size, self.spec.action_dim)
        return torch.randn(shape, generator=generator).to(self.device)

    def _velocity(self, actions: torch.Tensor, tokens: torch.Tensor,
                  tau: float) -> torch.Tensor:
        tau_t = torch.full((actions.shape[0],), tau, device=self.device)
        with self.autocast():
            return self.head(actions, tokens, tau_t).float()

    def predict(self, input_data: dict, data_normalization_interface) -> np.ndarray:
        self.validate(input_data)
        tokens = self.encode(input_data, data_normalization_interface)
        actions = self.initial_noise()
        dt = 1.0 / self.num_steps
        with torch.no_grad():
            for step in range(self.num_steps):
                actions = actions + dt * self._velocity(actions, tokens, step * dt)
        return self.to_actions(actions, data_normalization_interface)

    def guided_inference(self, input_data: dict, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size) -> np.ndarray:
        if self.guided_method == 'prefix':
            return self._prefix(input_data, data_normalization_interface,
                                int(action_chunk_size))
        # The vjp needs autograd, also when a caller wrapped us in inference_mode.
        with torch.inference_mode(False):
            return self._guided(input_data, data_normalization_interface,
                                int(min_num_actions_executed), int(action_chunk_size))

    def _guided(self, input_data: dict, data_normalization_interface,
                min_num_actions_executed: int, action_chunk_size: int) -> np.ndarray:
        self.validate(input_data, guided=True)
        if action_chunk_size != self.spec.action_chunk_size:
            raise ValueError(f'flow_matching: action_chunk_size {action_chunk_size} differs '
                             f'from the policy chunk size {self.spec.action_chunk_size}')
        norm = data_normalization_interface
        tokens = self.encode(input_data, norm)
        target = norm.normalize_action(torch.from_numpy(input_data['prev_action'])
                                       .to(self.device))[None]
        weights = torch.from_numpy(soft_mask_weights(
            action_chunk_size, min_num_actions_executed, int(input_data['est_delay']),
            self.schedule)).to(self.device)[None, :, None]
        actions = self.initial_noise()
        dt = 1.0 / self.num_steps
        for step in range(self.num_steps):
            tau = step * dt
            with torch.enable_grad():
                a_tau = actions.detach().requires_grad_(True)
                velocity = self._velocity(a_tau, tokens, tau)
                a1_hat = a_tau + (1.0 - tau) * velocity
                error = (target - a1_hat) * weights
                (grad,) = torch.autograd.grad(a1_hat, a_tau, grad_outputs=error.detach())
            velocity = velocity.detach() + guidance_weight(tau, self.beta) * grad
            actions = actions.detach() + dt * velocity
        return self.to_actions(actions, norm)

    def _prefix(self, input_data: dict, data_normalization_interface,
                action_chunk_size: int) -> np.ndarray:
        """Training-time RTC: the executed prefix held clean, the postfix integrated."""
        self.validate(input_data, guided=True)
        if action_chunk_size != self.spec.action_chunk_size:
            raise ValueError(f'flow_matching: action_chunk_size {action_chunk_size} differs '
                             f'from the policy chunk size {self.spec.action_chunk_size}')
        norm = data_normalization_interface
        prev = np.asarray(input_data['prev_action'])
        delay = int(min(max(int(input_data['est_delay']), 0), action_chunk_size))
        tokens = self.encode(input_data, norm)
        target = norm.normalize_action(torch.from_numpy(prev).to(self.device))[None].float()
        actions = self.initial_noise()
        actions[:, :delay] = target[:, :delay]
        times = torch.zeros((1, action_chunk_size), device=self.device)
        times[:, :delay] = 1.0
        dt = 1.0 / self.num_steps
        with torch.no_grad():
            for step in range(self.num_steps):
                times[:, delay:] = step * dt
                with self.autocast():
                    velocity = self.head(actions, tokens, times).float()
                actions = actions + dt * velocity
                actions[:, :delay] = target[:, :delay]
        out = self.to_actions(actions, norm)
        out[:delay] = prev[:delay]      # exactly what was executed, no round trip
        return out
