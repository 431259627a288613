"""Development fixtures for tests, the demo and the benchmarks (not the product API).

* ``broker`` — ``EmbeddedBroker``: an in-memory tansu Kafka broker on loopback.
"""
