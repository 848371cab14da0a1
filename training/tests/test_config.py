import pytest

from hypert5.config import HyperConfig, LoraSpec, PrefixSpec, T5Dims
from hypert5.examples import HyperInputFormat


@pytest.mark.parametrize(
    "make,field,value",
    [
        (lambda: T5Dims(d_model=0), "d_model", "0"),
        (lambda: T5Dims(feed_forward_proj="swish"), "feed_forward_proj", "'swish'"),
        (lambda: T5Dims(vocab_size=10, eos_token_id=10), "eos_token_id", "10"),
        (lambda: LoraSpec(rank=-1), "rank", "-1"),
        (lambda: LoraSpec(alpha=0), "alpha", "0"),
        (lambda: PrefixSpec(num_positions=0), "num_positions", "0"),
        (lambda: PrefixSpec(attention="joint"), "attention", "'joint'"),
        (lambda: HyperConfig(kind="adapter"), "kind", "'adapter'"),
        (lambda: HyperInputFormat(max_tokens=1), "max_tokens", "1"),
    ],
)
def test_invalid_config_names_field_and_value(make, field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{field}={value}"):
        make()


def test_example_serialization_is_the_documented_one() -> None:
    fmt = HyperInputFormat(input_prefix="in: ", output_prefix=" out: ", example_separator="\n")
    assert fmt.serialize([("a", "b"), ("c | d", "e")]) == "in: a out: b\nin: c | d out: e"
