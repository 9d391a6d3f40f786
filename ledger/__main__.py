"""``python -m ledger`` runs the chatledger command."""

from ledger.cli import app

app(prog_name="chatledger")
