"""Executable contracts: one test suite per plug-in contract, run against every plug-in.

``targets.py`` names every sink × backend (a ``TargetCase``), ``streams.py`` every
source's stream (a ``StreamCase``); ``test_sink_contract.py`` and
``test_source_contract.py`` hold the contracts. A new sink or source adds one case and
inherits the whole suite.
"""
