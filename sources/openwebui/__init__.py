"""The ``openwebui`` source: Open WebUI chat exports and databases; see :mod:`sources.openwebui.source`."""

from sources.openwebui.source import OpenWebUIOptions, OpenWebUISource

__all__ = ["OpenWebUIOptions", "OpenWebUISource"]
