"""Interfaces every policy satisfies."""
from env_actor.policy.templates.policy import Policy

__all__ = ['Policy']
