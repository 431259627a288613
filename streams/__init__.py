"""streams: I/O around the vision library: frame sources, result sinks, Kafka, brokers."""
