"""The bench's HTTP client against a fake server: retries are bounded, and every failure says what to do.

The 422 bodies are the live webui's own answers, recorded by tests/live/test_bench_brightness.py.
"""

import json
import socket
from pathlib import Path

import pytest
from fake_webui import FakeWebui

from sing_core.bench.client import (
    ApiNotEnabledError,
    BenchError,
    ExtensionMissingError,
    RequestRejectedError,
    RequestTimeoutError,
    ServerError,
    ServerUnreachableError,
    WebuiApi,
)

RECORDED = json.loads((Path(__file__).parent / "data" / "bench_brightness" / "errors.json").read_text())
TXT2IMG = "/sdapi/v1/txt2img"


def api(url: str, **options) -> tuple[WebuiApi, list[float], list[str]]:
    sleeps, warnings = [], []
    options = {"timeout": 5.0, "attempts": 3, "backoff": 0.5, **options}
    return WebuiApi(url, sleep=sleeps.append, warn=warnings.append, **options), sleeps, warnings


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_a_refused_connection_is_retried_with_backoff_then_explained():
    client, sleeps, warnings = api(f"http://127.0.0.1:{closed_port()}", attempts=4)
    with pytest.raises(ServerUnreachableError) as raised:
        client.get("/sdapi/v1/scripts")
    assert sleeps == [0.5, 1.0, 2.0]  # 4 attempts, 3 waits, doubling
    assert len(warnings) == 3
    assert "retry 1/3" in warnings[0]
    message = str(raised.value)
    assert client.url in message
    assert "after 4 attempts" in message
    assert "--api" in message


def test_a_server_that_comes_up_during_the_retries_is_used():
    with FakeWebui() as fake:
        fake.route("GET", "/sdapi/v1/scripts", 503, {"detail": "starting"})
        client = api(fake.url)[0]
        calls = []

        def come_up(delay):
            calls.append(delay)
            fake.route("GET", "/sdapi/v1/scripts", 200, {"txt2img": ["singdiffusion"]})

        client.sleep = come_up
        assert client.get("/sdapi/v1/scripts") == {"txt2img": ["singdiffusion"]}
        assert calls == [0.5]


def test_a_busy_server_is_retried_a_bounded_number_of_times():
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, 502, {"detail": "bad gateway"})
        client, sleeps, _ = api(fake.url, attempts=3)
        with pytest.raises(ServerError, match="HTTP 502"):
            client.post(TXT2IMG, {})
        assert len(fake.requests) == 3
        assert sleeps == [0.5, 1.0]


def test_404_on_the_sdapi_routes_means_the_api_is_off():
    with FakeWebui() as fake:  # a webui started without --api: FastAPI's 404 for routes it does not have
        client, sleeps, _ = api(fake.url)
        with pytest.raises(ApiNotEnabledError) as raised:
            client.post(TXT2IMG, {"prompt": "x"})
        assert "start the webui with the API enabled" in str(raised.value)
        assert "--api" in str(raised.value)
        assert sleeps == []
        assert len(fake.requests) == 1


def test_an_optional_route_that_is_missing_gives_none():
    with FakeWebui() as fake:
        client, _, _ = api(fake.url)
        assert client.get("/singdiffusion/v1/modules", missing_ok=True) is None


def test_the_webuis_422_for_a_missing_script_says_to_install_the_extension():
    recorded = RECORDED["script_missing"]
    assert recorded["body"]["detail"] == "Script 'SingDiffusion' not found"  # what v1.10.1 answers
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, recorded["status"], recorded["body"])
        client, sleeps, _ = api(fake.url)
        with pytest.raises(ExtensionMissingError) as raised:
            client.post(TXT2IMG, {})
        assert "install the sd-webui-singdiffusion extension" in str(raised.value)
        assert "enabled" in str(raised.value)
        assert sleeps == []


def test_the_other_wording_of_a_missing_always_on_script_is_understood_too():
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, 422, {"detail": "always on script SingDiffusion not found"})
        with pytest.raises(ExtensionMissingError):
            api(fake.url)[0].post(TXT2IMG, {})
        fake.route("POST", TXT2IMG, 422, {"detail": "Script 'Other' not found"})
        with pytest.raises(RequestRejectedError) as raised:
            api(fake.url)[0].post(TXT2IMG, {})
        assert not isinstance(raised.value, ExtensionMissingError)


def test_the_extensions_422_detail_for_an_unknown_module_is_shown():
    recorded = RECORDED["module_unknown"]
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, recorded["status"], recorded["body"])
        with pytest.raises(RequestRejectedError) as raised:
            api(fake.url)[0].post(TXT2IMG, {})
        assert raised.value.status == 422
        assert raised.value.detail == recorded["body"]["detail"]
        assert "SingDiffusion module 'nope' is not installed (installed: tiny-sing" in str(raised.value)


def test_a_500_is_not_retried_and_carries_the_servers_words():
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, 500, {"error": "RuntimeError", "detail": "", "body": "",
                                          "errors": "CUDA out of memory"})
        client, sleeps, _ = api(fake.url)
        with pytest.raises(ServerError) as raised:
            client.post(TXT2IMG, {})
        assert "HTTP 500: CUDA out of memory" in str(raised.value)
        assert "console" in str(raised.value)
        assert sleeps == []
        assert len(fake.requests) == 1


def test_a_slow_generation_times_out_once_and_is_not_sent_again():
    with FakeWebui() as fake:
        fake.route("POST", TXT2IMG, 200, {"images": []}, delay=1.0)
        client, sleeps, _ = api(fake.url, timeout=0.2)
        with pytest.raises(RequestTimeoutError) as raised:
            client.post(TXT2IMG, {})
        assert "within 0.2 s" in str(raised.value)
        assert "--timeout" in str(raised.value)
        assert len(fake.requests) == 1  # a second POST would queue a second generation
        assert sleeps == []


def test_a_slow_get_is_retried_then_reported():
    with FakeWebui() as fake:
        fake.route("GET", "/sdapi/v1/scripts", 200, {}, delay=1.0)
        client, sleeps, _ = api(fake.url, timeout=0.2, attempts=2)
        with pytest.raises(RequestTimeoutError):
            client.get("/sdapi/v1/scripts")
        assert len(fake.requests) == 2
        assert sleeps == [0.5]


def test_credentials_are_sent_and_a_401_says_how_to_give_them():
    with FakeWebui() as fake:
        fake.route("GET", "/sdapi/v1/scripts", 401, {"detail": "Incorrect username or password"})
        with pytest.raises(RequestRejectedError, match="--api-auth USER:PASSWORD"):
            api(fake.url)[0].get("/sdapi/v1/scripts")
    with pytest.raises(BenchError, match="USER:PASSWORD"):
        WebuiApi("http://127.0.0.1:1", auth="no-colon")
    assert WebuiApi("http://h", auth="me:pw").headers["Authorization"] == "Basic bWU6cHc="


def test_an_answer_that_is_not_json_and_a_url_without_scheme_are_explained():
    with FakeWebui() as fake:
        fake.route("GET", "/sdapi/v1/scripts", 200, b"<html>hello</html>")
        with pytest.raises(BenchError, match="not JSON"):
            api(fake.url)[0].get("/sdapi/v1/scripts")
    with pytest.raises(BenchError, match="must start with http://"):
        WebuiApi("127.0.0.1:7860")
