"""Placeholder: filled by the lifecycle work."""
