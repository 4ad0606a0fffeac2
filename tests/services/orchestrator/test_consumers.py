from services.orchestrator.consumers import version_from_metrics, wait_for_version


def test_info_gauge_with_a_model_version_label():
    text = (
        "# HELP hyp_detector_model_info Model in use\n"
        "# TYPE hyp_detector_model_info gauge\n"
        'hyp_detector_model_info{model_name="purchase-anomaly",model_version="3"} 0.0\n'
        'hyp_detector_model_info{model_name="purchase-anomaly",model_version="4"} 1.0\n'
    )
    assert version_from_metrics(text) == "4"


def test_the_endpoints_gauge_with_a_version_label():
    text = (
        'hyp_endpoint_model_version{model="purchase-anomaly",version="5"} 1.0\n'
        'hyp_endpoint_predictions_total{version="4"} 9.0\n'
    )
    assert version_from_metrics(text) == "5"


def test_gauge_named_model_version_with_the_number_as_value():
    assert version_from_metrics("hyp_detector_model_version 7.0\nother_metric 1\n") == "7"


def test_no_version_reported():
    assert version_from_metrics("process_cpu_seconds_total 1.0\n") is None


def test_wait_for_version_is_bounded_and_says_what_it_saw():
    seen = iter(["1", "1", "2"])
    ok = wait_for_version(lambda: next(seen), "2", timeout_s=5, interval_s=0.01)
    assert ok["status"] == "confirmed" and ok["version"] == "2"
    late = wait_for_version(lambda: "1", "2", timeout_s=0.05, interval_s=0.01)
    assert late["status"] == "timeout" and late["version"] == "1"
