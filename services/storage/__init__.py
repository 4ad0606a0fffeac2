"""`hyp storage`: Cloud Storage's JSON API on a local folder, for ``google-cloud-storage`` with
``STORAGE_EMULATOR_HOST`` (docs/storage.md).

- :mod:`settings`: the command's settings (port 4443, the data folder).
- :mod:`naming`: bucket and object names checked against Cloud Storage's naming rules.
- :mod:`errors`: the JSON API's error shape (``{"error": {"code", "message", "errors": [...]}}``).
- :mod:`store`: buckets and objects on disk: atomic writes, generations, preconditions, checksums.
- :mod:`resources`: the JSON resources (``storage#bucket``, ``storage#object``) the API answers with.
- :mod:`routes`: the HTTP surface (JSON API, upload and download paths); :mod:`app` assembles it.
"""
