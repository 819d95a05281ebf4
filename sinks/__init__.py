"""Detection sinks: ``falconet sink`` consumes ``detections.v1`` and delivers to SIEMs.

``base.py`` is the contract (records, options, the destination base class), ``http.py``
the shared HTTP client, ``runner.py`` the framework (batching, retry, filters, dedup,
DLQ, backpressure, commits, metrics), and one module per destination (``registry.py``
lists them)."""
