"""Pub/Sub emulator: gRPC google.pubsub.v1 and its REST surface, served from one in-process broker."""
