"""Action-chunk heads: a flow-matching velocity transformer and an ACT-style decoder.

Both condition on observation tokens (B, T, token_dim): one token per camera frame plus
one proprio token, built by the policy from the encoders.
"""
import math

import torch
import torch.nn as nn

from env_actor.models.registry import COMPONENT_REGISTRY


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :] * 1000.0
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def _check(name: str, **sizes: int) -> None:
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f'{name}: sizes must be positive integers, got {bad}')


@COMPONENT_REGISTRY.register('flow_transformer')
class FlowVelocityTransformer(nn.Module):
    """v(A_tau, obs, tau): a transformer over [obs tokens, action tokens].

    Args:
        action_dim / chunk_size: shape of the action chunk.
        token_dim: size of each observation token; num_obs_tokens: how many.
        d_model / depth / heads / ff_dim: transformer size.
    """

    def __init__(self, action_dim: int, chunk_size: int, token_dim: int, num_obs_tokens: int,
                 d_model: int = 128, depth: int = 3, heads: int = 4,
                 ff_dim: int = 256) -> None:
        super().__init__()
        _check('flow_transformer', action_dim=action_dim, chunk_size=chunk_size,
               token_dim=token_dim, num_obs_tokens=num_obs_tokens, d_model=d_model,
               depth=depth, heads=heads, ff_dim=ff_dim)
        self.action_dim, self.chunk_size, self.d_model = action_dim, chunk_size, d_model
        self.num_obs_tokens, self.token_dim = num_obs_tokens, token_dim
        self.action_in = nn.Linear(action_dim, d_model)
        self.obs_in = nn.Linear(token_dim, d_model)
        self.pos = nn.Parameter(torch.randn(1, num_obs_tokens + chunk_size, d_model) * 0.02)
        self.tau_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(),
                                     nn.Linear(d_model, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, action_dim))

    def forward(self, actions: torch.Tensor, obs_tokens: torch.Tensor,
                tau: torch.Tensor) -> torch.Tensor:
        """actions (B, H, A), obs_tokens (B, T, token_dim), tau (B,) or one flow time per
        action token (B, H) -> velocity (B, H, A). A (B,) tau equals (B, H) with equal rows."""
        if tau.dim() == 1:
            tau_emb = self.tau_mlp(sinusoidal_embedding(tau, self.d_model))[:, None, :]
        else:           # per-token flow times (training-time RTC: a clean prefix at 1)
            rows, cols = tau.shape
            tau_emb = self.tau_mlp(sinusoidal_embedding(tau.reshape(-1), self.d_model))
            tau_emb = tau_emb.reshape(rows, cols, self.d_model)
        tokens = torch.cat([self.obs_in(obs_tokens), self.action_in(actions) + tau_emb], 1)
        hidden = self.encoder(tokens + self.pos)
        return self.out(hidden[:, self.num_obs_tokens:])


@COMPONENT_REGISTRY.register('act_decoder')
class ACTChunkDecoder(nn.Module):
    """ACT-style decoder: H learned action queries cross-attend to observation tokens."""

    def __init__(self, action_dim: int, chunk_size: int, token_dim: int, num_obs_tokens: int,
                 d_model: int = 128, depth: int = 3, heads: int = 4,
                 ff_dim: int = 256) -> None:
        super().__init__()
        _check('act_decoder', action_dim=action_dim, chunk_size=chunk_size,
               token_dim=token_dim, num_obs_tokens=num_obs_tokens, d_model=d_model,
               depth=depth, heads=heads, ff_dim=ff_dim)
        self.action_dim, self.chunk_size = action_dim, chunk_size
        self.num_obs_tokens, self.token_dim = num_obs_tokens, token_dim
        self.queries = nn.Parameter(torch.randn(1, chunk_size, d_model) * 0.02)
        self.obs_in = nn.Linear(token_dim, d_model)
        self.obs_pos = nn.Parameter(torch.randn(1, num_obs_tokens, d_model) * 0.02)
        self.memory_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout=0.0, batch_first=True,
                                       norm_first=True), 1, enable_nested_tensor=False)
        layer = nn.TransformerDecoderLayer(d_model, heads, ff_dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, depth)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, action_dim))

    def forward(self, obs_tokens: torch.Tensor) -> torch.Tensor:
        """obs_tokens (B, T, token_dim) -> action chunk (B, H, A)."""
        memory = self.memory_encoder(self.obs_in(obs_tokens) + self.obs_pos)
        queries = self.queries.expand(obs_tokens.shape[0], -1, -1)
        return self.out(self.decoder(queries, memory))


@COMPONENT_REGISTRY.register('identity')
class IdentityComponent(nn.Identity):
    """A parameter-free placeholder, for policies without a model (e.g. `replay`)."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
