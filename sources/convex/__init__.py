"""The ``convex`` source: Convex ("Khala") snapshot exports; see :mod:`sources.convex.source`."""

from sources.convex.source import ConvexOptions, ConvexSource

__all__ = ["ConvexOptions", "ConvexSource"]
