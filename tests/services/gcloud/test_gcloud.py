"""`hyp gcloud`: gcloud's `emulators pubsub start` command line (testcontainers' PubSubContainer's) mapped to
`hyp pubsub` flags, and one real start from that line."""

from __future__ import annotations

import sys

import pytest

from services.common.processes import free_port
from services.gcloud.__main__ import PubsubStart, UsageError, main, parse, split_host_port
from tests.fixtures.ports import port_with_next_held
from tests.fixtures.started import logged_process

DOC = "https://cloud.google.com/sdk/gcloud/reference/beta/emulators/pubsub/start"
pytestmark = pytest.mark.gcp_parity(DOC)


def test_pubsub_containers_line() -> None:
    start = parse(["beta", "emulators", "pubsub", "start", "--project=test-project", "--host-port=0.0.0.0:8432"])
    assert start == PubsubStart("0.0.0.0", 8432, "test-project")
    assert start.hyp_args() == ["--host", "0.0.0.0", "--port", "8432", "--topology", "none", "--project",
                                "test-project"]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["emulators", "pubsub", "start"], PubsubStart("localhost", 8085)),  # GA track, default host-port
        (["alpha", "emulators", "pubsub", "start", "--host-port", "[::1]:9000"], PubsubStart("::1", 9000)),
        (
            ["beta", "emulators", "pubsub", "start", "--data-dir=/d", "--quiet", "--verbosity", "debug"],
            PubsubStart("localhost", 8085, None, "/d"),
        ),
        (["--project", "p", "beta", "emulators", "pubsub", "start"], PubsubStart("localhost", 8085, "p")),
    ],
)
def test_flag_forms_and_gcloud_wide_flags(argv: list[str], want: PubsubStart) -> None:
    assert parse(argv) == want


def test_data_dir_is_passed_on() -> None:
    assert PubsubStart("0.0.0.0", 1, None, "/data").hyp_args()[-2:] == ["--data-dir", "/data"]


@pytest.mark.parametrize(
    "argv",
    [
        ["beta", "emulators", "datastore", "start"],
        ["beta", "emulators", "pubsub", "env-init"],
        ["beta", "emulators", "pubsub", "start", "--bogus"],
        ["beta", "emulators", "pubsub", "start", "--host-port"],
        ["beta", "emulators", "pubsub", "start", "--host-port=host:port"],
    ],
)
def test_what_it_does_not_map_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


@pytest.mark.parametrize(("value", "want"), [("8085", ("localhost", 8085)), (":8085", ("localhost", 8085))])
def test_host_port_without_a_host(value: str, want: tuple[str, int]) -> None:
    assert split_host_port(value) == want


@pytest.mark.local_only("hyp's one-line usage errors")
def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["beta", "emulators", "pubsub", "start", "--bogus"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "hyp gcloud: unsupported flag --bogus (hyp gcloud maps `emulators pubsub start` only)"
    ]
    monkeypatch.setenv("HYP_PUBSUB_MEMORY_BUDGET_MB", "x")
    assert main(["beta", "emulators", "pubsub", "start"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("hyp gcloud: HYP_PUBSUB_MEMORY_BUDGET_MB: ")


@pytest.mark.integration
@pytest.mark.parametrize("rest_taken", [False, True], ids=["ports-free", "rest-port-taken"])
def test_the_line_starts_an_empty_emulator_that_says_it_started(tmp_path, rest_taken: bool) -> None:
    """Also when the REST side's default port (gRPC port + 1, ours, not gcloud's) is held by another process: the
    emulator serves REST on a free port instead of failing (CI saw `Address already in use`)."""
    port, holder = port_with_next_held() if rest_taken else (free_port(), None)
    log = tmp_path / "gcloud.log"
    argv = [sys.executable, "-m", "services.gcloud", "beta", "emulators", "pubsub", "start", "--project=tc",
            f"--host-port=127.0.0.1:{port}"]  # fmt: skip
    try:
        with logged_process(argv, log, f"[pubsub] INFO: Server started, listening on {port}", 30.0):
            from services.common.pubsub_clients import publisher

            client = publisher(f"127.0.0.1:{port}")
            assert list(client.list_topics(project="projects/tc")) == []  # no topology: empty, as Google's emulator
            client.create_topic(name="projects/tc/topics/orders")
            assert client.publish("projects/tc/topics/orders", b"x").result(timeout=10)
            if rest_taken:  # (with ports-free, port + 1 may still be taken by another process in between: no check)
                assert "is taken; serving on" in log.read_text()
    finally:
        if holder is not None:
            holder.close()
