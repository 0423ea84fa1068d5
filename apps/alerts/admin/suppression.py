"""Placeholder: filled by the suppression work."""
