import sys
def test_x(broker):
    import streams, streams.broker
    print(__name__, streams.__file__, sys.path[:3])
    assert broker.running
