"""Dead letters of the sinks: produced to the DLQ topic, acknowledged before the offset
of the record they stand for may be committed."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from falconet.errors import PublishError
from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings

__all__ = ["DeadLetterProducer"]

log = logging.getLogger("falconet.sinks.dlq")


class DeadLetterProducer:
    """One producer for every sink of the process (created on first use)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: Any = None
        self._thread: threading.Thread | None = None
        self._running = False

    def _ensure(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self._settings.confluent(**{
                "acks": "all", "enable.idempotence": True, "message.timeout.ms": 30_000,
                "message.max.bytes": MAX_MESSAGE_BYTES, "compression.type": "lz4",
                "client.id": "falconet-sink-dlq",
            }))  # fmt: skip
            self._running = True
            self._thread = threading.Thread(target=self._serve, name="sink-dlq", daemon=True)
            self._thread.start()
        return self._producer

    def _serve(self) -> None:
        while self._running:
            self._producer.poll(0.2)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce one record and wait for the broker's acknowledgement (PublishError)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(err: Any, msg: Any) -> None:
            def settle() -> None:
                if fut.done():
                    return
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(PublishError(f"dead letter to {topic}: {err}"))

            loop.call_soon_threadsafe(settle)

        producer = self._ensure()
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=done)
                break
            except BufferError:
                await asyncio.sleep(0.05)
        await fut

    def close(self, timeout: float = 10.0) -> int:
        """Flush and stop; the number of records still not acknowledged."""
        if self._producer is None:
            return 0
        left = self._producer.flush(timeout)
        self._running = False
        if self._thread is not None:
            self._thread.join(1.0)
        return left
