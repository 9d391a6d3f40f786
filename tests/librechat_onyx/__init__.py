"""Test helpers for the librechat source and the onyx sink: LibreChat fixture documents
written to a live MongoDB wire-protocol server (SecantusDB), to real BSON dump files and
to LibreChat JSON exports; an Onyx database loaded from the real DDL; a local HTTP server simulating Onyx's API."""
