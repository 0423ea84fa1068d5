"""Placeholder: filled by the delivery work."""
