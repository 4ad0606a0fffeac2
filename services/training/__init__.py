"""`hyp train` and `hyp models`: train, register and promote (Vertex AI training and Model Registry's stand-ins).

They sit above the ``models`` package, which never imports the load generator: generating rows is
these commands' choice (services/training/generated.py), the package takes frames.
"""
