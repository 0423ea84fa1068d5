"""Placeholder: filled by the alerts work."""
