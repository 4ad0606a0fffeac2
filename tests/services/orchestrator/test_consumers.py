from services.orchestrator.consumers import version_from_metrics, wait_for_version


def _detector_page(*versions: str) -> str:
    """The detector's own /metrics text after scoring batches with ``versions`` in turn."""
    from prometheus_client import generate_latest

    from services.detector.batch import Batch
    from services.detector.metrics import DetectorMetrics

    metrics = DetectorMetrics()
    for v in versions:
        metrics.observe_batch(Batch(messages=(), received_at=0.0, model_version=v))
    return generate_latest(metrics.registry).decode()


def _endpoint_page(version: str) -> str:
    from prometheus_client import generate_latest

    from services.endpoint.metrics import EndpointMetrics

    metrics = EndpointMetrics()
    metrics.model_version.labels("purchase-anomaly", version).set(1)
    metrics.predictions.labels("4").inc(9)
    return generate_latest(metrics.registry).decode()


def test_the_detectors_page_gives_the_version_it_scores_with_now():
    assert version_from_metrics(_detector_page("3", "4")) == "4"


def test_the_endpoints_page_gives_the_version_it_serves():
    assert version_from_metrics(_endpoint_page("5")) == "5"


def test_a_version_gauge_without_labels_gives_its_value():
    assert version_from_metrics("hyp_detector_model_version 7.0\nother_metric 1\n") == "7"


def test_no_version_reported():
    assert version_from_metrics("process_cpu_seconds_total 1.0\n") is None
    assert version_from_metrics(_detector_page()) is None


def test_wait_for_version_is_bounded_and_says_what_it_saw():
    seen = iter(["1", "1", "2"])
    ok = wait_for_version(lambda: next(seen), "2", timeout_s=5, interval_s=0.01)
    assert ok["status"] == "confirmed" and ok["version"] == "2"
    late = wait_for_version(lambda: "1", "2", timeout_s=0.05, interval_s=0.01)
    assert late["status"] == "timeout" and late["version"] == "1"


def test_the_detectors_urls_are_a_comma_separated_list_and_addresses_stay_as_given():
    from services.orchestrator.consumers import expand, split_urls

    assert split_urls("http://a:1/metrics, http://b:2/metrics,") == ["http://a:1/metrics", "http://b:2/metrics"]
    assert split_urls(None) == [] and split_urls(" ") == []
    assert expand("http://127.0.0.1:9464/metrics") == ["http://127.0.0.1:9464/metrics"]
    assert expand("http://localhost:9464/metrics") == ["http://localhost:9464/metrics"]
    # a name that does not resolve is left for the probe to report
    assert expand("http://no-such-host.invalid:9464/metrics") == ["http://no-such-host.invalid:9464/metrics"]
