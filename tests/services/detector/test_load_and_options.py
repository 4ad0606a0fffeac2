"""Load stage into a real warehouse folder; option resolution (local, Dataflow, Kafka); CLI errors; metrics."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from services.common.config import ConfigError
from services.detector import pipeline
from services.detector.__main__ import main
from services.detector.metrics import DetectorMetrics
from services.detector.options import OptionsError, resolve
from services.warehouse.query import query
from tests.services.detector.helpers import batch, message, purchase_event, verdict_table, view_event


def _cfg(*flags: str):
    return resolve(PipelineOptions(list(flags)))


def test_load_writes_events_and_verdicts_to_the_warehouse(tmp_path):
    cfg = _cfg("--warehouse-dir", str(tmp_path), "--source", "pubsub", "--runner", "DataflowRunner")
    parsed = pipeline.records.parse_batch(batch(message(0, purchase_event(0), ack=False), message(1, view_event(1))))
    scored = parsed.replace(verdicts=({"score": 0.1, "is_anomaly": False, "model_version": "3"},), model_version="3")
    with test_pipeline.TestPipeline(runner="BundleBasedDirectRunner") as p:
        counts = p | beam.Create([scored]) | pipeline.Load(cfg)
        assert_that(counts, equal_to([2]))
    events = query(tmp_path, "SELECT message_id, source FROM dataflow ORDER BY 1").to_pylist()
    assert events == [{"message_id": "m0", "source": "detector"}, {"message_id": "m1", "source": "detector"}]
    verdicts = query(tmp_path, f"SELECT transaction_id, anomaly, model_version FROM {verdict_table()}").to_pylist()
    assert verdicts == [{"transaction_id": "t0", "anomaly": False, "model_version": "3"}]


def test_defaults_come_from_the_environment_and_flags_override(monkeypatch):
    monkeypatch.setenv("HYP_PROJECT", "p1")
    monkeypatch.setenv("HYP_DETECTOR_BATCH_SIZE", "300")
    cfg = _cfg()
    assert cfg.source == "local" and cfg.runner == "BundleBasedDirectRunner"
    assert cfg.subscription == "projects/p1/subscriptions/hyp_subscription_dataflow"
    assert cfg.detections_topic == "projects/p1/topics/hyp-detections"
    assert cfg.batch_size == 300
    cfg = _cfg("--detector-batch-size", "50", "--subscription", "projects/x/subscriptions/s")
    assert cfg.batch_size == 50 and cfg.subscription == "projects/x/subscriptions/s"
    monkeypatch.setenv("HYP_DETECTOR_BATCH_SIZE", "many")  # a bad variable is named; a flag overrides it
    with pytest.raises(ConfigError, match=r"^HYP_DETECTOR_BATCH_SIZE: Input should be a valid integer"):
        _cfg()
    assert _cfg("--detector_batch_size", "70").batch_size == 70


def test_every_settings_field_of_the_detector_is_a_flag_in_both_spellings():
    from services.common.settings import CommonSettings
    from services.detector.flags import FLAGS
    from services.detector.settings import DetectorSettings

    own = set(DetectorSettings.model_fields) - set(CommonSettings.model_fields)
    assert own <= {f.field for f in FLAGS}
    parser = main.__globals__["_parser"]()
    for flag in ("--batch-linger-s", "--batch_linger_s", "--kafka-bootstrap", "--emulator_host", "--tracking-uri"):
        assert flag in parser.format_help()


def test_dataflow_uses_read_from_pubsub_and_the_gcp_project():
    cfg = _cfg("--runner", "DataflowRunner", "--source", "pubsub", "--project", "my-gcp")
    assert cfg.subscription == "projects/my-gcp/subscriptions/hyp_subscription_dataflow"
    with pytest.raises(OptionsError, match=r"^--source: local works only on BundleBasedDirectRunner"):
        _cfg("--runner", "DataflowRunner")


def test_kafka_options_and_read_wiring():
    with pytest.raises(ConfigError, match=r"^--kafka-bootstrap-servers: required"):
        _cfg("--runner", "FlinkRunner", "--source", "kafka")
    cfg = _cfg("--runner", "FlinkRunner", "--source", "kafka", "--kafka-bootstrap", "kafka:9092", "--kafka-topic", "ev")
    assert (cfg.kafka_bootstrap_servers, cfg.kafka_topic, cfg.kafka_group) == ("kafka:9092", "ev", "hyp-detector")
    read = pipeline.kafka_read(cfg)  # Python-only (kafka_read.py): no Java expansion service involved
    assert (read.bootstrap_servers, read.topic, read.group) == ("kafka:9092", "ev", "hyp-detector")
    record = type(
        "R",
        (),
        {
            "topic": "ev",
            "partition": 1,
            "offset": 42,
            "timestamp": 1_700_000_000_000,
            "value": b"{}",
            "headers": [("sent_at", b"123")],
        },
    )()
    msg = pipeline.kafka_message(record)
    assert (msg.message_id, msg.attributes, msg.ack_id) == ("ev/1/42", {"sent_at": "123"}, None)
    assert msg.publish_time_us == 1_700_000_000_000_000


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--detector-batch-size", "0"], "--detector-batch-size: must be at least 1"),
        (["--ack-deadline", "5"], "--ack-deadline: must be 10..600"),
        (["--max-outstanding", "10", "--detector-batch-size", "20"], "--max-outstanding: 10 is below"),
        (["--runner", "DataflowRunner"], "--source: local works only"),
        (["--metrics_port", "x"], "--metrics-port: Input should be a valid integer"),
    ],
)
def test_bad_options_exit_2_with_a_one_line_reason(flags, reason, capsys):
    assert main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyp detector: ") and reason in err and "\n" not in err


def test_unknown_choice_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--scorer", "magic"])
    assert exit_info.value.code == 2
    assert "--scorer" in capsys.readouterr().err


def test_metrics_count_a_batch():
    m = DetectorMetrics()
    b = pipeline.records.parse_batch(batch(message(0, purchase_event(0)), message(1, b"{bad")))
    b = b.replace(verdicts=({"score": 9.0, "is_anomaly": True, "model_version": "4"},), model_version="4")
    m.observe_batch(b)
    assert m.sample("hyp_detector_events_total") == 2
    assert m.sample("hyp_detector_anomalies_total") == 1
    assert m.sample("hyp_detector_deadlettered_total") == 1
    assert m.sample("hyp_detector_latency_seconds_count") == 2
    assert m.sample("hyp_detector_model_version", {"model_version": "4"}) == 1
    m.observe_batch(b.replace(model_version="5"))
    assert m.sample("hyp_detector_model_version", {"model_version": "4"}) is None
    assert m.sample("hyp_detector_model_version", {"model_version": "5"}) == 1


def test_the_stacks_flink_command_line_resolves():
    from services.detector.__main__ import _beam_args

    flags = ["--runner", "FlinkRunner", "--flink-master", "flink-jobmanager:8081", "--source", "kafka"]
    options = PipelineOptions(_beam_args([*flags, "--kafka-bootstrap", "kafka:9092", "--metrics-port", "9464"]))
    cfg = resolve(options)
    assert (cfg.runner, cfg.kafka_bootstrap_servers, cfg.metrics_port) == ("FlinkRunner", "kafka:9092", 9464)
    assert options.get_all_options()["flink_master"] == "flink-jobmanager:8081"


def test_the_config_reads_every_setting_and_survives_pickling():
    """Beam pickles the config into its DoFns; a settings field needs no second declaration to be read."""
    import pickle

    from services.detector.settings import DetectorSettings

    cfg = pickle.loads(pickle.dumps(_cfg("--commit-max-rows", "7", "--project", "p9")))
    for name in DetectorSettings.model_fields:
        getattr(cfg, name)
    assert (cfg.commit_max_rows, cfg.project, cfg.runner) == (7, "p9", "BundleBasedDirectRunner")
    assert cfg.deadletter_topic == "projects/p9/topics/hyp-deadletter"
