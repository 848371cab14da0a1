"""Training-step graphs: ONNX Runtime against PyTorch on the tiny fixture, determinism, the batch
conventions, and bundles without the graphs."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import REPO

from hypert5.bundle import REFINE_GRAPH_FILES, REFINE_WEIGHTS_FILE, BundleError, fingerprint, validate
from hypert5.examples import HyperInputFormat
from hypert5.export_refine import kind_specs, load_frozen
from hypert5.generate import pad_batch
from hypert5.ort_runtime import OrtBundle
from hypert5.refine import TextLimits, augment_pairs, encode_batch, teacher_forcing
from hypert5.refine_check import GRAD_TOLERANCE, LOSS_TOLERANCE, PARAM_TOLERANCE, check_step_graph, step_differences
from hypert5.refine_graph import TrainStep
from hypert5.refine_runtime import OrtRefiner
from hypert5.train.text import encode, targets

FIXTURE = REPO / "test" / "fixtures" / "tiny"
DEMOS = [("Ada Lovelace", "Lovelace, A."), ("Grace Hopper", "Hopper, G."), ("Alan Turing", "Turing, A.")]


def session(kind: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(FIXTURE / REFINE_GRAPH_FILES[f"train_step_{kind}"]), options, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def manifest() -> dict:
    return validate(FIXTURE)


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_step_graph_matches_pytorch_loss_gradients_and_parameters_after_steps(manifest, kind) -> None:
    step = TrainStep(load_frozen(FIXTURE, manifest), kind_specs(manifest, kind))
    worst = step_differences(session(kind), step)
    assert worst["loss"] <= LOSS_TOLERANCE and worst["loss_after"] <= LOSS_TOLERANCE, worst
    assert worst["grad_relative"] <= GRAD_TOLERANCE, worst
    assert worst["params_relative"] <= PARAM_TOLERANCE, worst


def test_the_gate_fails_a_graph_of_another_model(manifest) -> None:
    """The check is not a tautology: the same graph against a T5 with one weight changed is refused."""
    t5 = load_frozen(FIXTURE, manifest)
    with torch.no_grad():
        t5.lm_head.weight.mul_(1.5)
    with pytest.raises(AssertionError, match="train_step_lora"):
        check_step_graph(session("lora"), TrainStep(t5, kind_specs(manifest, "lora")), "lora")


def test_manifest_describes_the_step_graphs(manifest) -> None:
    t5 = load_frozen(FIXTURE, manifest)
    for kind in ("lora", "prefix"):
        graph = manifest["graphs"][f"train_step_{kind}"]
        step = TrainStep(t5, kind_specs(manifest, kind))
        assert [io["name"] for io in graph["inputs"]] == [n for n, _, _ in step.inputs]
        assert [io["name"] for io in graph["outputs"]] == [n for n, _, _ in step.outputs]
        assert manifest["refine"]["kinds"][kind]["graph"] == f"train_step_{kind}"
    assert manifest["refine"]["kinds"]["lora"]["learning_rate"] == 1e-3
    assert manifest["refine"]["kinds"]["prefix"]["learning_rate"] == 3e-2
    assert REFINE_WEIGHTS_FILE in manifest["files"]


def test_refinement_is_deterministic_and_lowers_the_loss() -> None:
    """Same bundle, start and demonstrations: the same bytes, also from a fresh set of sessions."""
    results = []
    for _ in range(2):
        runtime = OrtBundle(FIXTURE)
        refiner = OrtRefiner(runtime)
        start = runtime.hyper("lora", DEMOS)
        batch = refiner.batch(DEMOS, "leave-one-out")
        points = list(refiner.run("lora", start, batch, [1, 20]))
        results.append(points)
        assert refiner.loss("lora", points[-1].adapter, batch) < points[0].loss
    for a, b in zip(*results):
        assert a.loss == b.loss
        assert all(a.adapter[n].tobytes() == b.adapter[n].tobytes() for n in a.adapter)


def test_batch_follows_the_training_conventions() -> None:
    """eos appended, right padding, decoder inputs shifted behind start 0, labels -100 on padding:
    as evaluate.tune builds its batches."""
    limits = TextLimits(eos=1, pad=0, source_max_tokens=256, target_max_tokens=64)
    from hypert5.train.text import TOKENIZER

    got = encode_batch(DEMOS, TOKENIZER.encode, limits)
    ids, mask = pad_batch([encode(x, 256) for x, _ in DEMOS])
    want_decoder_in, want_labels = targets([encode(y, 64) for _, y in DEMOS])
    assert np.array_equal(got["input_ids"], ids.numpy()) and np.array_equal(got["attention_mask"], mask.numpy())
    decoder_in, labels = teacher_forcing(
        torch.from_numpy(got["target_ids"]), torch.from_numpy(got["target_mask"]), 0, 0
    )
    assert torch.equal(decoder_in, want_decoder_in) and torch.equal(labels, want_labels)


def test_leave_one_out_adds_one_row_per_demonstration_with_the_others_in_context() -> None:
    fmt = HyperInputFormat()
    rows = augment_pairs(DEMOS, "leave-one-out", fmt)
    assert rows[:3] == DEMOS and len(rows) == 6
    assert rows[4] == (
        "in: Ada Lovelace out: Lovelace, A.\nin: Alan Turing out: Turing, A.\nin: Grace Hopper out: ",
        "Hopper, G.",
    )
    assert augment_pairs(DEMOS[:1], "leave-one-out", fmt) == DEMOS[:1]
    with pytest.raises(ValueError, match="augment='all'"):
        augment_pairs(DEMOS, "all", fmt)


def without_refine(src, dst) -> None:
    """A copy of ``src`` as a bundle made before the step graphs existed."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for name in [*REFINE_GRAPH_FILES.values(), REFINE_WEIGHTS_FILE]:
        (dst / name).unlink()
        del manifest["files"][name]
    for name in REFINE_GRAPH_FILES:
        del manifest["graphs"][name]
    del manifest["refine"]
    manifest["fingerprint"] = fingerprint(manifest["files"])
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_a_bundle_without_step_graphs_still_validates_and_loads(tmp_path) -> None:
    without_refine(FIXTURE, tmp_path / "old")
    manifest = validate(tmp_path / "old")
    assert "train_step_lora" not in manifest["graphs"]
    runtime = OrtBundle(tmp_path / "old")
    assert runtime.greedy(["abc"], [runtime.hyper("lora", DEMOS)], 4)
    with pytest.raises(ValueError, match="export_refine"):
        OrtRefiner(runtime)


def test_validate_refuses_a_refine_entry_without_its_graph(tmp_path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["refine"]["kinds"]["lora"]["graph"] = "train_step_missing"
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="refine.kinds.lora names graph 'train_step_missing'"):
        validate(tmp_path / "b")


def test_summary_reports_how_well_refined_adapters_fit_their_demonstrations() -> None:
    from hypert5.train.refine_eval import summarize

    def task(one_pass, refined, demos_exact):
        fit = {"demos_exact": 0.0, "mean_logprob": -2.0, "loo_exact": 0.0}
        return {
            "fit": fit,
            "rows": {
                "one_pass": {"exact": one_pass, "seconds": 0.0},
                "hyper_init/none/50": {
                    "exact": refined,
                    "seconds": 1.0,
                    "fit": {"demos_exact": demos_exact, "mean_logprob": -0.5, "loo_exact": 0.0},
                },
            },
        }

    summary = summarize([task([0.0, 0.0], [1.0, 0.0], 1.0), task([0.0, 1.0], [0.0, 0.0], 0.5)], [50])
    assert summary["rows"]["hyper_init/none/50"]["exact_match_percent"] == 25.0
    assert summary["refined_fit_mean"] == {"hyper_init/none/50": {"demos_exact": 0.75, "mean_logprob": -0.5}}
