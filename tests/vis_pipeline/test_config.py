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
        ({"propagation": {"boxes": "kalman"}}, "propagation.boxes='kalman'"),
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("fps=.nan", "fps=nan must be a finite number"),
        ("fps=.inf", "fps=inf must be a finite number"),
        ("fps=1.0e-300", "fps=1e-300 must be in [0.01, 1000]"),
        ("tracker.max_lost_s=.inf", "tracker.max_lost_s=inf must be a finite number"),
        ("live.max_gap_ms=-.inf", "live.max_gap_ms=-inf must be a finite number"),
        ("detector.threads=100000", "detector.threads=100000 must be in [1, 256]"),
        ("detector.batch_size=100000", "detector.batch_size=100000 must be in [1, 64]"),
        ("detector.max_detections=1000000000", "detector.max_detections=1000000000 must be in"),
        ("detector.min_size=100000", "detector.min_size=100000 must be in [32, 4096]"),
        ("detector.rpn_pre_nms_top_n=0", "detector.rpn_pre_nms_top_n=0 must be in [1, 10000]"),
        ("detector.num_classes=2000000000", "detector.num_classes=2000000000 must be in"),
        ("queue_size=100000", "queue_size=100000 must be in [1, 256]"),
        ("parallel_streams=0", "parallel_streams=0 must be in [1, 64]"),
        ("checkpoint_every=" + "9" * 400, "checkpoint_every=<an integer of 400 digits> is out"),
        ("keyframes.interval=" + "9" * 5000, "--set keyframes.interval: the value is not valid"),
        ("frame.max_pixels=0", "frame.max_pixels=0 must be in [1, 35389440]"),
        ("frame.max_pixels=.nan", "frame.max_pixels=nan must be an integer"),
    ],
)
def test_config_numbers_are_finite_and_within_what_a_machine_runs(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_frame_max_pixels_defaults_to_8k():
    assert load_config(None).frame.max_pixels == 7680 * 4320
    assert load_config(None, ["frame.max_pixels=307200"]).frame.max_pixels == 307200


def test_a_config_file_with_a_number_too_long_to_read_is_one_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("fps: 1" + "0" * 5000 + "\n")
    with pytest.raises(ConfigError, match="holds a number too long"):
        load_config(p)
