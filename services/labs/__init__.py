"""Offline workshop labs: the Activate chapter, challenge by challenge (`hyp lab start|check|solve|reset`)."""
