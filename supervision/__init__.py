"""Live supervision: alert rules and their engine, the caller's emotion signal, the live view.

Everything here is pure domain code (plain data in, plain values out); the call core feeds it
through :mod:`supervision.call_watch` and the adapters publish what it returns.
"""
