"""services/common/config.py: flags over environment over defaults, validated once, one error format."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import AliasChoices, Field, model_validator

from services.common.config import Command, ConfigError, FieldError, Flag, Parser, add_flags, load, values
from services.common.settings import CommonSettings


class Demo(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_DEMO_HOST")
    port: int = Field(8090, ge=1, le=65535, validation_alias=AliasChoices("AIP_HTTP_PORT", "HYP_DEMO_PORT"))
    mode: Literal["fast", "slow"] = Field("fast", validation_alias="HYP_DEMO_MODE")
    low: int = Field(1, validation_alias="HYP_DEMO_LOW")
    high: int = Field(2, validation_alias="HYP_DEMO_HIGH")
    subscribe: bool = Field(True, validation_alias="HYP_DEMO_SUBSCRIBE")

    @model_validator(mode="after")
    def _ordered(self) -> Demo:
        if self.low > self.high:
            raise FieldError("low", f"{self.low} is above high ({self.high})")
        return self


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYP_DEMO_HOST", "AIP_HTTP_PORT", "HYP_DEMO_PORT", "HYP_DEMO_MODE", "HYP_DEMO_LOW", "HYP_DEMO_HIGH"):
        monkeypatch.delenv(name, raising=False)


def command() -> Command[Demo]:
    cli = Command("demo", Demo, description="a demo")
    cli.flag("host", help="listen address")
    cli.flag("port", help="listen port")
    cli.flag("mode")
    cli.flag("low")
    cli.flag("subscribe", "--no-subscribe", action="store_const", const=False)
    return cli


def test_field_names_and_environment_names_both_construct() -> None:
    assert Demo(port=8091).port == 8091
    assert Demo(HYP_DEMO_PORT=8092).port == 8092  # type: ignore[call-arg]


def test_field_names_are_not_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert (Demo().port, Demo().host) == (8090, "127.0.0.1")


def test_flags_beat_the_environment_which_beats_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYP_DEMO_HOST", "10.0.0.1")
    monkeypatch.setenv("HYP_DEMO_PORT", "9000")
    _, s = command().parse(["--port", "9001"])
    assert (s.host, s.port, s.mode) == ("10.0.0.1", 9001, "fast")


def test_a_good_flag_hides_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYP_DEMO_PORT", "not-a-port")
    assert command().parse(["--port", "9001"])[1].port == 9001


def test_range_checks_apply_to_flags() -> None:
    with pytest.raises(ConfigError) as err:
        command().parse(["--port", "70000"])
    assert err.value.name == "--port"
    assert "65535" in err.value.message


def test_a_bad_environment_value_names_the_variable_that_was_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYP_DEMO_PORT", "x")  # the second of the field's two names
    with pytest.raises(ConfigError) as err:
        command().parse([])
    assert str(err.value).startswith("HYP_DEMO_PORT: ")


def test_a_cross_field_error_names_the_field_s_flag_or_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--low: 5 is above high \(2\)$"):
        command().parse(["--low", "5"])
    monkeypatch.setenv("HYP_DEMO_LOW", "5")
    with pytest.raises(ConfigError, match=r"^HYP_DEMO_LOW: "):
        command().parse([])


def test_store_const_flag_and_literal_choices() -> None:
    _, s = command().parse(["--no-subscribe", "--mode", "slow"])
    assert (s.subscribe, s.mode) == (False, "slow")
    assert command().parse([])[1].subscribe is True


def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        command().parse(["--mode", "medium"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("hyp demo: --mode: invalid choice: 'medium'")


def test_fail_prints_one_line_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert command().fail(ConfigError("--port", "bad")) == 2
    assert capsys.readouterr().err == "hyp demo: --port: bad\n"


def test_help_says_where_else_a_value_comes_from() -> None:
    text = command().parser.format_help()
    assert "(env AIP_HTTP_PORT or HYP_DEMO_PORT, default 8090)" in " ".join(text.split())


def test_flags_on_a_foreign_parser() -> None:
    flags = (Flag("port", ("--port_number", "--port-number"), "port"),)
    parser = Parser(prog="hyp x")
    add_flags(parser, Demo, flags)
    given = values(parser.parse_args(["--port-number", "0"]), flags)
    with pytest.raises(ConfigError, match=r"^--port_number: "):
        load(Demo, given, flags)
    assert load(Demo, values(parser.parse_args([]), flags), flags).port == 8090
