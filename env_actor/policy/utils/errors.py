"""Errors raised while loading a policy bundle; each message names the file and key."""


class PolicyLoadError(ValueError):
    """A policy/component YAML, checkpoint or stats file is malformed or inconsistent."""


class PolicyFileNotFoundError(PolicyLoadError, FileNotFoundError):
    """A file the policy YAML refers to does not exist."""
