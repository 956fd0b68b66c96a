"""``python -m archtune`` runs the CLI."""

from archtune.cli import main

main()
