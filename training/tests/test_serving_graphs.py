"""The serving graph variants (experiments/serving_graphs.py) compute exactly what the bundle's decoder
computes, on the tiny fixture: same outputs on the same feeds and the same greedy decodes, for rows of each
kind a variant serves."""

import json

import numpy as np
import pytest
from conftest import REPO

from experiments import serving_graphs as sg
from hypert5.ort_runtime import OrtBundle

BUNDLE = REPO / "test" / "fixtures" / "tiny"
QUERIES = ["a query", "another one"]


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    paths = sg.build_variants(BUNDLE, manifest, tmp_path_factory.mktemp("variants"))
    return {name: sg.Variant(path) for name, path in paths.items()}


def random_adapters(runtime: OrtBundle, kind: str) -> list[dict]:
    """Random adapters rather than the untrained hypermodel's: every layer's tensors then change the output,
    so a variant that feeds a layer the wrong slice cannot match."""
    rng = np.random.default_rng(0)
    tensors = runtime.manifest["adapters"]["kinds"][kind]["tensors"]
    return [{t["name"]: (rng.standard_normal(t["shape"]) * 0.3).astype(np.float32) for t in tensors} for _ in QUERIES]


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_every_variant_matches_the_bundle_decoder(variants, kind) -> None:
    runtime = OrtBundle(BUNDLE)
    adapters = random_adapters(runtime, kind)
    feeds = runtime.step_feeds(QUERIES, adapters, past=3)["decoder"]
    current = variants["current"]
    plain = {k: np.zeros_like(v) if k.startswith(kind) else v for k, v in feeds.items()}
    assert not np.allclose(current.run(None, feeds)[0], current.run(None, plain)[0], atol=1e-3)
    want = sg.greedy_with(runtime, current, QUERIES, adapters)
    served = [name for name, v in variants.items() if kind in v.kinds() and name != "current"]
    assert {"both", f"{kind}+layers", f"{kind}+kv", f"{kind}+kv+mha", "ort-extended"} <= set(served)
    for name in served:
        diffs = sg.max_diffs(current, variants[name], feeds)
        assert max(diffs.values()) < 1e-4, (name, diffs)
        assert sg.greedy_with(runtime, variants[name], QUERIES, adapters) == want, name
