"""The extraction engine: a source's records into the ledger (DESIGN §4, §7).

``engine`` runs an extraction (reader child, writer, run and lock), ``reader`` walks a
source's scopes, ``writer`` applies the append rule in ledger transactions, ``batch``
holds what crosses between them. The public names are here.
"""

from ledger.extract.engine import ExtractResult, ExtractSettings, extract

__all__ = ["ExtractResult", "ExtractSettings", "extract"]
