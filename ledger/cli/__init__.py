"""The ``chatledger`` command: a thin layer over :mod:`ledger.api` and friends.

Exit codes (DESIGN §8): 0 success, 1 failure, 2 usage error, 3 verification mismatch.
Read commands take ``--json``; output goes to stdout, logs and progress to stderr.
Each module registers its commands on the one Typer ``app``.
"""

# import order is the order of --help
from ledger.cli import extracting, replaying, inspecting, benchmarks  # noqa: F401, I001
from ledger.cli.app import app

__all__ = ["app"]
