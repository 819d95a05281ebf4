"""``python -m falconet`` runs the command line."""

from falconet.cli import entry

entry()
