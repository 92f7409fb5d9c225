"""The demo data: deterministic people, devices and (later) history for the demo geography."""
