"""Every HTTP service is served one way: its settings' host, port and access-log switch, our logging."""

from __future__ import annotations


def test_options_follow_the_service_settings_and_the_access_log_switch(monkeypatch):
    from services.common.serve import options
    from services.processor.settings import ProcessorSettings

    monkeypatch.setenv("HYP_PROCESSOR_PORT", "18123")
    monkeypatch.delenv("HYP_ACCESS_LOG", raising=False)
    quiet = options(ProcessorSettings())
    assert (quiet["host"], quiet["port"], quiet["access_log"], quiet["log_config"]) == ("127.0.0.1", 18123, False, None)
    monkeypatch.setenv("HYP_ACCESS_LOG", "1")
    assert options(ProcessorSettings(), proxy_headers=False)["access_log"] is True
    assert options(ProcessorSettings(), port=1)["port"] == 1
