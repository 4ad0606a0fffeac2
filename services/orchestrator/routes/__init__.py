"""The orchestrator's HTTP routes, one router per concern; api.py gathers them into the app."""
