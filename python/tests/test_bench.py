"""jagged.bench returns the report `jagged bench --json` writes (the same library call)."""

import json

import jagged
from conftest import run_cli

OPTIONS = dict(dist="uniform", batch=4, min_len=3, max_len=20, seed=9, runs=1, warmup=0)


def test_bench_report_has_the_cli_json_form(tmp_path):
    report = jagged.bench("synthetic:tiny", **OPTIONS)
    out = tmp_path / "report.json"
    run_cli("bench", "--model", "synthetic:tiny", "--dist", "uniform", "--batch", 4, "--min-len", 3, "--max-len", 20,
            "--seed", 9, "--runs", 1, "--warmup", 0, "--json", out)
    expected = json.loads(out.read_text())
    assert set(report) == set(expected)
    for key in ["model", "distribution", "lengths", "real_tokens", "padded_tokens", "real_flops", "ideal_time_ratio",
                "ideal_memory_ratio"]:
        assert report[key] == expected[key], key
    assert report["nested"]["median_seconds"] > 0 and report["padded"]["median_seconds"] > 0
    assert set(report["nested"]["stage_median_seconds"]) == set(expected["nested"]["stage_median_seconds"])
    assert report["parity"]["max_rel"] < 1e-4


def test_bench_encoder_and_bad_options():
    report = jagged.bench("synthetic:bert-tiny", **OPTIONS)
    assert report["real_tokens"] == sum(report["lengths"])
    import pytest
    for bad in [dict(runs=0), dict(batch=0), dict(min_len=5, max_len=4), dict(dist="zipf"), dict(warmup=-1)]:
        with pytest.raises(ValueError):
            jagged.bench("synthetic:tiny", **{**OPTIONS, **bad})
    with pytest.raises(OSError):
        jagged.bench("/nonexistent/model.gguf", **OPTIONS)
