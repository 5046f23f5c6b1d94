"""The web console: campaigns, recordings, flows and live calls in a browser (``run_ivr.py console``)."""
