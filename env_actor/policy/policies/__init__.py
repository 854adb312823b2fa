"""Concrete policies: `policies/<type>/<type>.py`, auto-imported by `build_policy`."""
