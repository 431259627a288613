"""EmbeddedBroker: start on a given port, stop, restart on the same port, clean up."""

from __future__ import annotations

from pathlib import Path

from devtools.broker import EmbeddedBroker, free_port, kafka_ping


def test_given_port_stop_restart_and_cleanup():
    port = free_port()
    broker = EmbeddedBroker(port=port, topics={"vis.frames": 2})
    with broker:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        assert broker.running and kafka_ping("127.0.0.1", port)
        pid = broker.pid
        broker.stop()
        assert not broker.running and not kafka_ping("127.0.0.1", port, timeout_s=0.3)
        broker.restart()
        assert broker.running and broker.port == port and broker.pid != pid
        assert kafka_ping("127.0.0.1", port)
        assert broker.starts == 2
        log_path = broker.log_path
        assert "tansu" in broker.log_tail() or log_path.exists()
    assert not broker.running and not log_path.exists()
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone (or a zombie)


def test_ping_of_a_closed_port_is_false():
    assert not kafka_ping("127.0.0.1", free_port(), timeout_s=0.3)
