"""`tickparity sweep/stress --cluster`: the same matrix on Ray, tested on Ray's local multi-node
test cluster (ray.cluster_utils.Cluster: a head and a second node, one CPU each) and on a
private `ray-local` instance; results are identical to the local process pool's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modes.cli import main
from modes.stress import run_stress

DATA = Path(__file__).resolve().parents[1] / "scenarios" / "data"
MM = str(DATA / "mm.toml")


def _key(cell):
    return (cell["strategy"], cell["scenario"], cell["status"], cell["fingerprint"], cell["figures"],
            [(i["name"], i["status"], i["first_ts"]) for i in cell["invariants"]])


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    path = tmp_path_factory.mktemp("ray") / "short.toml"
    path.write_text('[base]\ndata = "synthetic:5:20s"\n[[perturbations]]\nkind = "rate_limit"\nafter = "5s"\n'
                    '[[invariants]]\nkind = "ledger_reconciles"\n[[invariants]]\nkind = "no_ban"\n')
    return path


def test_sweep_on_a_two_node_ray_cluster_matches_the_process_pool(tmp_path, short):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        grid = ["--grid", 'qty="0.01","0.02"', "--scenarios", str(short), "--no-report"]
        assert main(["sweep", "--strategy", MM, *grid, "--cluster", cluster.address,
                     "--out", str(tmp_path / "ray")]) == 0
    finally:
        cluster.shutdown()
    assert main(["sweep", "--strategy", MM, *grid, "--jobs", "2", "--out", str(tmp_path / "pool")]) == 0
    on_ray = json.loads((tmp_path / "ray" / "results.json").read_text())
    on_pool = json.loads((tmp_path / "pool" / "results.json").read_text())
    assert [_key(c) for c in on_ray["cells"]] == [_key(c) for c in on_pool["cells"]]
    assert len(on_ray["cells"]) == 2 and on_ray["meta"]["jobs"].startswith("ray ")
    assert {c["status"] for c in on_ray["cells"]} == {"pass"}


def test_stress_on_a_private_ray_local_instance(tmp_path, short):
    status, cells = run_stress([MM], [str(short)], tmp_path / "o", report=False, echo=lambda *_: None,
                               cluster="ray-local")
    assert status == 0 and [c["status"] for c in cells] == ["pass"]
    assert (tmp_path / "o" / "junit.xml").is_file()


def test_an_unreachable_cluster_is_a_user_error(tmp_path, short, capsys):
    assert main(["stress", "--strategies", MM, "--scenarios", str(short), "--cluster", "127.0.0.1:1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--cluster 127.0.0.1:1: cannot connect to Ray" in capsys.readouterr().err
