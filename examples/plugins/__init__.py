"""The two plug-ins docs/plugins.md walks through; the contract suites run them too."""
