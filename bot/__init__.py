"""The outside world: CLI, settings, composition root, channels."""
