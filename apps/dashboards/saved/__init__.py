"""Saved dashboards: pages of chart widgets an organization composes, shares by URL and manages as code."""
