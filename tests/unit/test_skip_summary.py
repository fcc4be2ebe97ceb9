"""The test command's skip lines: one per tier, short, with the commonest reason and where the tier is explained."""

from types import SimpleNamespace

from skip_summary import skip_summary

LIVE_REASON = ("neither WEBUI_DIR nor FORGE_DIR is set (or LIVE_HOST names one that is not): the live tier drives a "
               "real webui, AUTOMATIC1111 v1.10.1 (WEBUI_DIR=/path/to/webui, ...); see tests/live/README.md")


def skipped(nodeid: str, reason: str) -> SimpleNamespace:
    # a test's skip carries (path, line, "Skipped: reason"); a module skipped at collection the same tuple
    return SimpleNamespace(nodeid=nodeid, longrepr=(nodeid.split("::", maxsplit=1)[0], 1, f"Skipped: {reason}"))


def test_one_line_per_tier_with_the_count_and_the_commonest_reason(tmp_path):
    (tmp_path / "tests" / "live").mkdir(parents=True)
    (tmp_path / "tests" / "live" / "README.md").write_text("how to run it")
    reports = [skipped(f"tests/live/test_a.py::test_{i}", LIVE_REASON) for i in range(40)]
    reports += [skipped("tests/live/test_b.py", "needs chromium; apt-get install chromium")]
    reports += [skipped("tests/comfyui/test_c.py::test_x", "COMFYUI_DIR is not set: the ComfyUI tier ...")]
    lines = skip_summary(reports, tmp_path)
    assert lines == [
        "comfyui: 1 skipped: COMFYUI_DIR is not set",
        ("live: 41 skipped: neither WEBUI_DIR nor FORGE_DIR is set (or LIVE_HOST names one that is not) (+1 other "
         "reason); see tests/live/README.md"),
    ]


def test_a_long_reason_is_cut_to_the_width(tmp_path):
    (line,) = skip_summary([skipped("tests/unit/test_x.py::t", "x" * 300)], tmp_path, width=50)
    assert line == "unit: 1 skipped: " + "x" * 49 + "…"
