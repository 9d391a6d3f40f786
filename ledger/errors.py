"""Exceptions the CLI turns into messages and exit codes (DESIGN §8)."""

from __future__ import annotations

import signal


class ChatledgerError(Exception):
    """A failure to report to the user as a message; exit code 1."""

    exit_code = 1


class UsageError(ChatledgerError):
    """The command was called wrongly (unknown option, bad value); exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """chatledger.toml or an option value is wrong."""


class LedgerVersionError(ChatledgerError):
    """The ledger was written by a newer chatledger."""


class LockHeld(ChatledgerError):
    """Another live process holds the stream's or target's lock."""


class LockLost(ChatledgerError):
    """Our lock was broken by someone else while we worked."""


class VerificationMismatch(ChatledgerError):
    """verify found differences; exit code 3."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (the run ends ``interrupted``; exit code 143)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated("terminated (SIGTERM)")


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in this (main) thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)
