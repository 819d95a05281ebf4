"""Bundled recorded scenarios (package data)."""
