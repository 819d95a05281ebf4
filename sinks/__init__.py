"""Detection sinks: the shared batching/retry framework and one module per destination.
(Built by the sinks issue; this package only reserves the namespace today.)"""
