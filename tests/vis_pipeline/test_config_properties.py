"""Property-based: generated configuration mappings and ``--set`` overrides give a config of
finite numbers within the documented ranges, or one ConfigError line."""

from hypothesis import example, given, settings

from devtools.hostile import check_config, check_override, config_mappings, set_overrides

from tests.mutations import PROPERTY_SETTINGS

PROFILE = settings(PROPERTY_SETTINGS, max_examples=200)


@PROFILE
@given(config_mappings())
@example({"fps": float("nan")})
@example({"tracker": {"max_lost_s": float("inf")}})
@example({"detector": {"threads": 100000}})
@example({"detector": {"batch_size": 100000}})
@example({"detector": {"max_detections": 1000000000}})
@example({"checkpoint_every": 10**400})
def test_config_mappings_keep_the_contract(data):
    check_config(data)


@PROFILE
@given(set_overrides)
def test_set_overrides_keep_the_contract(item):
    check_override(item)
