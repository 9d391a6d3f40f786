"""The ``chatgpt`` source: ChatGPT data exports; see :mod:`sources.chatgpt.source`."""

from sources.chatgpt.source import ChatGPTOptions, ChatGPTSource

__all__ = ["ChatGPTOptions", "ChatGPTSource"]
