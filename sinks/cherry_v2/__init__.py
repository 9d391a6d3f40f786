"""Cherry Studio v2 (``cherrystudio.sqlite``) as a sink."""

from sinks.cherry_v2.sink import CherryV2Options, CherryV2Sink

__all__ = ["CherryV2Options", "CherryV2Sink"]
