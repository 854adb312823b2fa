"""Loader, normalization, input validation and weight transfer utilities."""
