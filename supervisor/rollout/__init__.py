"""Rollouts of changed services: the executor (`executor`), auto-update (`autoupdate`)."""
