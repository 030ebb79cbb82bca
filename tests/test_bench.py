"""`grukit bench` end to end on its smallest row: files, records and ratios are consistent."""
import json

from grukit import cli


def test_bench_one_row_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench"
    code = cli.main(["bench", "--rows", "N1", "--repeats", "1", "--no-memory", "--no-jax", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "cpu.json").read_text())
    assert result["environment"]["sgemm_gflops"] > 0
    by_impl = {r["impl"]: r for r in result["records"] if r["row"] == "N1" and r["reset"] == "after"}
    assert {"grukit-fused", "grukit-eager", "torch.nn.GRU"} <= set(by_impl)
    for record in by_impl.values():
        assert record["fwd_ms"] > 0 and record["train_ms"] > 0
    ours = by_impl.get("grukit-cpu", by_impl["grukit-fused"])
    vs_torch = [t for t in result["targets"] if t["target"] == "N1: training step vs torch.nn.GRU"]
    if "grukit-cpu" in by_impl:  # the targets table is about the cpu kernel
        assert abs(vs_torch[0]["value"] - by_impl["torch.nn.GRU"]["train_ms"] / ours["train_ms"]) < 0.01
    table = (out / "cpu.md").read_text()
    assert "| N1 (1, 512, 64, 128) | after | torch.nn.GRU |" in table


def test_bench_unknown_row_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["bench", "--rows", "N7", "--out", str(tmp_path / "b")]) == 2
    assert "rows" in capsys.readouterr().err
