"""The ``laravel`` sink: the OpenAgents Laravel tables; see :mod:`sinks.laravel.sink`."""

from sinks.laravel.sink import LaravelOptions, LaravelSink

__all__ = ["LaravelOptions", "LaravelSink"]
