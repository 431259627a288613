import pytest

from vis.config import ConfigError, from_mapping
from vis_pipeline import PipelineConfig, load_config


@pytest.mark.parametrize(
    "data, message",
    [
        ({"keyframes": {"interval": 0}}, "keyframes.interval=0"),
        ({"keyframes": {"interval": "ten"}}, "keyframes.interval='ten' must be an integer"),
        ({"tracker": {"mask_weight": 1.5}}, "tracker.mask_weight=1.5"),
        ({"detector": {"score_treshold": 0.3}}, "unknown key detector.score_treshold"),
        ({"propagation": {"warp": "magic"}}, "propagation.warp='magic'"),
        ({"detector": {"type": "precomputed"}}, "detector.path"),
        ({"sinks": {"jsonl": "yes"}}, "sinks.jsonl='yes' must be true or false"),
    ],
)
def test_invalid_config_names_key_and_value(data, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(PipelineConfig, data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_are_yaml_and_nested(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("keyframes: {interval: 3}\ndetector: {score_threshold: 0.4}\n")
    cfg = load_config(p, ["keyframes.interval=7", "tracker.use_kalman=false"], output="o")
    assert cfg.keyframes.interval == 7
    assert cfg.detector.score_threshold == 0.4
    assert cfg.tracker.use_kalman is False
    assert cfg.output == "o"


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("keyframes: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
