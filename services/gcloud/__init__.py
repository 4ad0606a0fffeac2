"""`hyp gcloud`: the gcloud emulator command lines other tools run, mapped to hyp's own commands.

testcontainers' ``PubSubContainer`` starts its image with ``gcloud beta emulators pubsub start --project=P
--host-port=0.0.0.0:PORT``; our images' entry point is ``hyp``, so that line arrives here as ``hyp gcloud
beta emulators pubsub start ...`` and runs ``hyp pubsub`` (see :mod:`services.gcloud.__main__`).
"""
