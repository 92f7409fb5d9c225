"""Callbacks, one module per feature, each with ``register(app, sources)``.

The modules and their order are listed in ``callbacks.registry``.
"""
