"""The import bound ``max_abs`` on every adapter tensor: written by the exporter, validated, met by the
hypermodels' own adapters, and the same in the committed bundles."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from hypert5.adapters import lora_specs, prefix_specs
from hypert5.bundle import MAX_ABS, BundleError, _check_max_abs, build_manifest, max_abs, validate
from hypert5.config import LoraSpec, PrefixSpec, T5Dims
from hypert5.export import check_adapter_bounds
from hypert5.onnx_graphs import build_graphs
from hypert5.ort_runtime import OrtBundle
from hypert5.presets import random_models

FIXTURE = REPO / "test" / "fixtures" / "tiny"
SHIPPED = REPO / "models" / "default"


def test_every_tensor_role_has_a_bound_and_an_unknown_role_is_refused(dims: T5Dims):
    specs = [
        *lora_specs(dims, LoraSpec(rank=4)),
        *prefix_specs(dims, PrefixSpec(num_positions=3, attention="peft")),
        *prefix_specs(dims, PrefixSpec(num_positions=3, attention="gated")),
    ]
    assert {s.name.rsplit(".", 1)[-1] for s in specs} <= set(MAX_ABS)
    assert max_abs("prefix.decoder.self.mask") == 1.0
    with pytest.raises(BundleError, match="lora.encoder.self.q.c.*'c'"):
        max_abs("lora.encoder.self.q.c")


def test_build_manifest_writes_max_abs_on_every_tensor(tmp_path: Path):
    models = random_models("tiny")
    manifest = build_manifest(models, build_graphs(models), tmp_path)
    for kind in manifest["adapters"]["kinds"].values():
        for t in kind["tensors"]:
            assert t["max_abs"] == MAX_ABS[t["name"].rsplit(".", 1)[-1]], t["name"]


@pytest.mark.parametrize("bundle", [FIXTURE, SHIPPED], ids=["fixture", "shipped"])
def test_committed_bundles_carry_the_exporters_bounds_and_their_hypermodels_meet_them(bundle: Path):
    runtime = OrtBundle(bundle)
    for kind in runtime.manifest["adapters"]["kinds"].values():
        for t in kind["tensors"]:
            assert t["max_abs"] == max_abs(t["name"]), t["name"]
    cases = json.loads((bundle / "golden.json").read_text())["cases"]
    adapters = [
        (
            c["name"],
            c["adapter"]["kind"],
            runtime.hyper(c["adapter"]["kind"], [(e["input"], e["output"]) for e in c["adapter"]["examples"]]),
        )
        for c in cases
        if c["adapter"]
    ]
    assert adapters
    check_adapter_bounds(runtime.manifest, adapters)


def test_check_adapter_bounds_names_the_tensor_above_its_bound():
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    spec = manifest["adapters"]["kinds"]["lora"]["tensors"][0]
    adapter = {spec["name"]: np.full(spec["shape"], 3.4e38, np.float32)}
    with pytest.raises(
        AssertionError, match=f"case x: the lora hypermodel gives {spec['name']} values up to 3.4e\\+38"
    ):
        check_adapter_bounds(manifest, [("x", "lora", adapter)])
    check_adapter_bounds(manifest, [("x", "lora", {spec["name"]: np.full(spec["shape"], spec["max_abs"], np.float32)})])


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    out = tmp_path / "tiny"
    shutil.copytree(FIXTURE, out)
    return out


def _edit(bundle: Path, kind: str, index: int, value) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    tensor = manifest["adapters"]["kinds"][kind]["tensors"][index]
    if value is None:
        del tensor["max_abs"]
    else:
        tensor["max_abs"] = value
    path.write_text(json.dumps(manifest))


def test_validate_accepts_a_bundle_without_max_abs(bundle_copy: Path):
    _edit(bundle_copy, "lora", 0, None)
    validate(bundle_copy)


@pytest.mark.parametrize("value", [0, -1.0, "100", True, None])
def test_validate_refuses_a_max_abs_that_is_not_a_positive_number(bundle_copy: Path, value):
    if value is None:  # JSON has no infinity: the nearest thing a hand edit produces is 1e999
        path = bundle_copy / "manifest.json"
        path.write_text(path.read_text().replace('"max_abs": 100.0', '"max_abs": 1e999', 1))
    else:
        _edit(bundle_copy, "lora", 0, value)
    with pytest.raises(BundleError, match=r"adapters\.kinds\.lora tensor lora\.encoder\.self\.q\.a: max_abs is"):
        validate(bundle_copy)


def test_a_mask_bound_below_one_is_refused(tmp_path: Path):
    mask = {"name": "prefix.decoder.self.mask", "dtype": "float32", "shape": [4], "max_abs": 0.5}
    with pytest.raises(BundleError, match="a mask holds 1"):
        _check_max_abs(tmp_path / "manifest.json", "prefix", mask)
    _check_max_abs(tmp_path / "manifest.json", "prefix", {**mask, "max_abs": 1.0})
