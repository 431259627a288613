"""KafkaSinkConfig validation, and secrets kept out of logs, reprs and errors."""

from __future__ import annotations

import logging

import pytest

from devtools.broker import EmbeddedBroker
from streams.kafka import FrameReader, KafkaSecurity, KafkaSink, KafkaSinkConfig, load_kafka_config
from streams.sinks import SinkError
from vis.config import ConfigError, to_mapping

SECRET = "s3cr3t-Zebra-42!"
ENV = "VIS_TEST_KAFKA_PASSWORD"


def test_defaults_and_empty_mapping():
    cfg = load_kafka_config({})
    assert cfg == KafkaSinkConfig()
    kw = cfg.producer_kwargs()
    assert kw["acks"] == "all" and kw["compression_type"] == "zstd"
    assert kw["max_in_flight_requests_per_connection"] <= 5 and kw["retries"] >= 1
    assert "enable_idempotence" not in kw  # left to kafka-python: on where the broker has it
    assert load_kafka_config(None) == KafkaSinkConfig()


def test_full_mapping():
    cfg = load_kafka_config(
        {
            "bootstrap_servers": "k1:9092,k2:9092",
            "topic": "frames",
            "tracks_topic": None,
            "compression": "zstd",
            "linger_ms": 20,
            "max_request_size": 2097152,
            "buffer_max_bytes": 4194304,
            "delivery_timeout_s": 30,
            "oversize_policy": "error",
            "security": {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "vis",
                "sasl_password_env": "KAFKA_PASSWORD",
                "ssl_cafile": "/etc/ssl/ca.pem",
            },
        }
    )
    assert cfg.tracks_topic is None and cfg.delivery_timeout_s == 30.0
    assert cfg.producer_kwargs()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert cfg.security.sasl_password_env == "KAFKA_PASSWORD"


@pytest.mark.parametrize(
    "data,key",
    [
        ({"topik": "x"}, "kafka.topik"),
        ({"linger_ms": "5"}, "kafka.linger_ms"),
        ({"linger_ms": -1}, "kafka.linger_ms"),
        ({"compression": "brotli"}, "kafka.compression"),
        ({"topic": "bad topic!"}, "kafka.topic"),
        ({"topic": ""}, "kafka.topic"),
        ({"tracks_topic": "vis.frames"}, "kafka.tracks_topic"),
        ({"retries": 0}, "kafka.retries"),
        ({"max_in_flight": 6}, "kafka.max_in_flight"),
        ({"max_request_size": 1000}, "kafka.max_request_size"),
        ({"buffer_max_bytes": 1024}, "kafka.buffer_max_bytes"),
        ({"delivery_timeout_s": 1}, "kafka.delivery_timeout_s"),
        ({"block_timeout_s": 0}, "kafka.block_timeout_s"),
        ({"track_end_frames": 0}, "kafka.track_end_frames"),
        ({"oversize_policy": "drop"}, "kafka.oversize_policy"),
        ({"security": {"security_protocol": "SASL_SSL"}}, "kafka.security.sasl_mechanism"),
        ({"security": {"sasl_mechanism": "PLAIN"}}, "kafka.security.sasl_mechanism"),
        (
            {
                "security": {
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "PLAIN",
                    "sasl_plain_username": "u",
                }
            },
            "kafka.security.sasl_password_env",
        ),
        (
            {
                "security": {
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "PLAIN",
                    "sasl_plain_username": "u",
                    "sasl_password_env": "not a name",
                }
            },
            "kafka.security.sasl_password_env",
        ),
        ({"security": {"ssl_cafile": "/ca.pem"}}, "kafka.security.ssl_cafile"),
        ({"security": {"password": "x"}}, "kafka.security.password"),
    ],
)
def test_validation_error_names_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        load_kafka_config(data)
    assert key in str(info.value)


def test_missing_codec_library_is_a_config_error(monkeypatch):
    import kafka.codec

    monkeypatch.setattr(kafka.codec, "has_zstd", lambda: False)
    with pytest.raises(ConfigError, match="zstandard"):
        KafkaSink(bootstrap_servers="127.0.0.1:1", compression="zstd")


def test_idempotence_off_is_explicit_and_keeps_order():
    cfg = KafkaSinkConfig(enable_idempotence=False)
    kw = cfg.producer_kwargs()
    assert kw["enable_idempotence"] is False
    assert kw["max_in_flight_requests_per_connection"] == 1  # retries cannot reorder
    assert KafkaSinkConfig().producer_kwargs()["max_in_flight_requests_per_connection"] == 5
    cfg = KafkaSinkConfig(enable_idempotence=False, max_in_flight=10)
    assert cfg.producer_kwargs()["max_in_flight_requests_per_connection"] == 10


def _sasl_config(bootstrap: str) -> KafkaSinkConfig:
    return load_kafka_config(
        {
            "bootstrap_servers": bootstrap,
            "connect_timeout_s": 2.0,
            "security": {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "vis",
                "sasl_password_env": ENV,
            },
        }
    )


def test_missing_password_variable_is_named(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ConfigError, match=ENV):
        _sasl_config("127.0.0.1:1").security.client_kwargs()


@pytest.mark.slow
def test_secrets_stay_out_of_logs_reprs_and_errors(monkeypatch, caplog):
    monkeypatch.setenv(ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    for name in ("kafka", "streams"):  # undo the conftest's quieting for this test
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts: list[str] = []
    with EmbeddedBroker(extra_args=["--authentication"]) as broker:  # no such user: refused
        cfg = _sasl_config(broker.bootstrap_servers)
        texts += [repr(cfg), str(cfg), repr(cfg.security), str(to_mapping(cfg))]
        assert cfg.security.client_kwargs()["sasl_plain_password"] == SECRET  # passed through
        with pytest.raises(SinkError) as info:
            KafkaSink(cfg)
        texts += [str(info.value), repr(info.value), repr(info.value.__cause__)]
        with pytest.raises(Exception) as info2:
            FrameReader(
                "vis.frames",
                bootstrap_servers=broker.bootstrap_servers,
                security=cfg.security,
                consumer_kwargs={"bootstrap_timeout_ms": 2000},
            )
        texts += [str(info2.value), repr(info2.value)]
    # kafka-python logs SASL requests at DEBUG; a SASL/PLAIN request carries the password
    logging.getLogger("kafka.net.connection").debug(
        "Sending request SaslAuthenticateRequest(auth_bytes=%r)", b"\x00vis\x00" + SECRET.encode()
    )
    records = caplog.records
    assert any("SaslHandshake" in r.getMessage() for r in records), "SASL path not exercised"
    texts += [r.getMessage() for r in records]
    texts += [caplog.text]
    leaks = [t for t in texts if SECRET in t]
    assert not leaks, leaks[:3]
    assert "auth_bytes=b'\\x00vis\\x00***'" in caplog.text
    assert ENV in repr(cfg)  # the variable's name is fine to show


def test_sink_repr_has_no_password(broker, monkeypatch):
    monkeypatch.setenv(ENV, SECRET)
    sink = KafkaSink(bootstrap_servers=broker.bootstrap_servers, topic="vis.frames.repr")
    sec = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="u",
        sasl_password_env=ENV,
    )
    assert SECRET not in repr(sink) and SECRET not in repr(sec) and SECRET not in str(sink.stats())
    sink.close()
