"""chatledger's core: records, the ledger store, extraction, replay and the CLI."""

__version__ = "0.1.0"
