"""The ``chatbotui`` source: Chatbot UI exports (v1–v4); see :mod:`sources.chatbotui.source`."""

from sources.chatbotui.source import ChatbotUIOptions, ChatbotUISource

__all__ = ["ChatbotUIOptions", "ChatbotUISource"]
