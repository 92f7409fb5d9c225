"""Wushi command-center dashboard: settings, app factory, CLI and process entry points."""
