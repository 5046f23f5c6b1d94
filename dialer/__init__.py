"""Outbound dialer: campaigns, compliant scheduling, retries and outcomes."""
