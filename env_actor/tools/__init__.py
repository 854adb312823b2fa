"""Command-line tools: smoke run, replay/evaluation, simulated robot, training."""
