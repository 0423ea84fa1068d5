"""Placeholder: filled by the evaluation work."""
