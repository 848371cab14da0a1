"""The Python ONNX Runtime client's entry points for raw token ids, which the bench's cost sections use:
a fixed-length decode that runs past eos, the hypermodel on ids as they are, and ids without a limit."""

import numpy as np
import pytest
from conftest import REPO

from hypert5.ort_runtime import OrtBundle

# The shipped model: a trained one ends its answers with eos, which a random fixture rarely does.
SHIPPED = REPO / "models" / "default"
DEMOS = [("abc", "cba"), ("hello", "olleh"), ("xyz", "zyx")]


@pytest.fixture(scope="module")
def runtime() -> OrtBundle:
    return OrtBundle(SHIPPED)


def test_fixed_length_decode_runs_past_eos(runtime):
    adapter = runtime.hyper("lora", DEMOS)
    ids = runtime.encode_text("in: stop")
    stopped = runtime.greedy_ids([ids], [adapter], 24)[0]
    assert len(stopped) < 24, "the case needs an answer that ends before the budget"
    fixed = runtime.greedy_ids([ids], [adapter], 24, stop_at_eos=False)[0]
    assert len(fixed) == 24
    assert fixed[: len(stopped) + 1] == [*stopped, runtime.special["eos"]]


def test_hyper_on_ids_is_hyper_on_the_serialized_examples(runtime):
    by_examples = runtime.hyper("prefix", DEMOS)
    by_ids = runtime.hyper_ids("prefix", runtime.token_ids(runtime.hyper_format.serialize(DEMOS)))
    assert by_ids.keys() == by_examples.keys()
    for name, value in by_examples.items():
        np.testing.assert_array_equal(by_ids[name], value)


def test_token_ids_have_no_limit_where_encode_text_refuses(runtime):
    text = "a" * runtime.manifest["encoder_input"]["max_tokens"]
    with pytest.raises(ValueError, match="the limit is"):
        runtime.encode_text(text)
    assert runtime.token_ids(text)[-1] == runtime.special["eos"]
    assert len(runtime.token_ids(text)) > runtime.manifest["encoder_input"]["max_tokens"]
