"""falconet: a real-time cloud runtime detection pipeline with a Falco-compatible rules engine.

The shared core lives here and imports neither Kafka nor Faust: event and detection
records, priorities, field registry types, errors, configuration, input codecs and the CLI.
"""

__version__ = "0.1.0"
