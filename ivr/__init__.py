"""Telephony voice IVR and outbound calling engine."""

__version__ = "0.1.0"
