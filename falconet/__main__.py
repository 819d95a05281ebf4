"""``python -m falconet`` runs the command line."""

from falconet.cli import main

main(prog_name="falconet")
