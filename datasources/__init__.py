"""Data access: SQLAlchemy models and queries, Redis stream and live state, the event schema.

Nothing here imports Dash; functions return plain values (frozen dataclasses, dicts, DataFrames).
"""
