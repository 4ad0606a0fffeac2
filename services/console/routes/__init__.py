"""The console's HTTP routes, one router per concern; app.py gathers them into the app."""
