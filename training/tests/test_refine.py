"""Training-step graphs: ONNX Runtime against PyTorch on the tiny fixture, determinism, the batch
conventions, and bundles without the graphs."""

import json
import shutil

import numpy as np
import onnx
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
from hypert5.refine_simplify import op_counts, simplify
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


def patterns_graph() -> onnx.ModelProto:
    """One of each pattern refine_simplify rewrites, as the exporter writes them (shapes in value_info,
    the batch dim symbolic): Pow 1, 2 (and 3, kept), an Identity, linear layers through 2-D (from and to
    (rows, 3, 8); to heads; from merged heads), an attention product through 3-D, a Reshape chain, a
    Reshape and an Expand to their input's shape, and the sum of per-layer gradients placed by Where."""
    rng = np.random.default_rng(0)
    c = {
        "one": np.array(1.0, np.float32),
        "two": np.array(2.0, np.float32),
        "three": np.array(3.0, np.float32),
        "w": rng.standard_normal((8, 8)).astype(np.float32),
        "flat": np.array([-1, 8], np.int64),
        "tail": np.array([3, 8], np.int64),
        "tail_heads": np.array([3, 2, 4], np.int64),
        "q3": np.array([-1, 3, 4], np.int64),
        "k3": np.array([-1, 4, 3], np.int64),
        "tail4": np.array([2, 3, 3], np.int64),
        "c1": np.array([-1, 9], np.int64),
        "c2": np.array([-1, 18], np.int64),
        "ax1": np.array([1], np.int64),
        "tail_layers": np.array([2, 8], np.int64),
        "zero": np.array(0.0, np.float32),
        "hot0": np.array([True, False]).reshape(1, 2, 1),
        "hot1": np.array([False, True]).reshape(1, 2, 1),
    }
    node = onnx.helper.make_node
    nodes = [
        node("Pow", ["x", "one"], ["p1"]),
        node("Pow", ["x", "two"], ["p2"]),
        node("Pow", ["x", "three"], ["p3"]),
        node("Add", ["p1", "p2"], ["h"]),
        node("Identity", ["h"], ["hid"]),
        node("Shape", ["x"], ["lead"], start=0, end=1),
        # (rows, 3, 8) -> (rows, 3, 8)
        node("Reshape", ["hid", "flat"], ["xf"]),
        node("MatMul", ["xf", "w"], ["mm"]),
        node("Concat", ["lead", "tail"], ["ys"], axis=0),
        node("Reshape", ["mm", "ys"], ["y"], allowzero=1),
        # (rows, 3, 8) -> heads (rows, 3, 2, 4)
        node("Reshape", ["y", "flat"], ["yf"]),
        node("MatMul", ["yf", "w"], ["mm_heads"]),
        node("Concat", ["lead", "tail_heads"], ["hs"], axis=0),
        node("Reshape", ["mm_heads", "hs"], ["hd"], allowzero=1),
        node("Transpose", ["hd"], ["q"], perm=[0, 2, 1, 3]),
        node("Transpose", ["hd"], ["k"], perm=[0, 2, 3, 1]),
        node("Reshape", ["q", "q3"], ["qf"]),
        node("Reshape", ["k", "k3"], ["kf"]),
        node("MatMul", ["qf", "kf"], ["s3"]),
        node("Concat", ["lead", "tail4"], ["ss"], axis=0),
        node("Reshape", ["s3", "ss"], ["s"]),
        node("Softmax", ["s"], ["sm"], axis=-1),
        # merged heads (rows, 3, 2, 4) -> (rows, 3, 8)
        node("MatMul", ["sm", "q"], ["ctx"]),
        node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        node("Reshape", ["ctx_t", "flat"], ["cf"]),
        node("MatMul", ["cf", "w"], ["mm_out"]),
        node("Concat", ["lead", "tail"], ["os"], axis=0),
        node("Reshape", ["mm_out", "os"], ["o"], allowzero=1),
        node("Mul", ["o", "two"], ["attn"]),
        node("Reshape", ["sm", "c1"], ["r1"]),
        node("Reshape", ["r1", "c2"], ["r2"]),
        node("Shape", ["r2"], ["r2s"]),
        node("Expand", ["r2", "r2s"], ["e"]),
        node("Mul", ["e", "two"], ["out"]),
        node("Shape", ["p3"], ["p3s"]),
        node("Reshape", ["p3", "p3s"], ["p3r"]),
        node("Mul", ["p3r", "two"], ["cube"]),
        # the backward of selecting layer l of a (rows, 2, 8) stack, summed over the 2 layers
        node("ReduceSum", ["x", "ax1"], ["g0"], keepdims=0),
        node("ReduceSum", ["p2", "ax1"], ["g1"], keepdims=0),
        node("Unsqueeze", ["g0", "ax1"], ["u0"]),
        node("Unsqueeze", ["g1", "ax1"], ["u1"]),
        node("Concat", ["lead", "tail_layers"], ["ls"], axis=0),
        node("Expand", ["u0", "ls"], ["e0"]),
        node("Expand", ["u1", "ls"], ["e1"]),
        node("Expand", ["zero", "ls"], ["zeros"]),
        node("Where", ["hot0", "e0", "zeros"], ["w0"]),
        node("Where", ["hot1", "e1", "zeros"], ["w1"]),
        node("Add", ["w1", "w0"], ["layers"]),
    ]
    f = onnx.TensorProto.FLOAT
    shapes = {
        **{n: ["rows", 3, 8] for n in ("p1", "p2", "p3", "h", "hid", "y", "o", "p3r")},
        **{n: ["3*rows", 8] for n in ("xf", "mm", "yf", "mm_heads", "cf", "mm_out")},
        **{n: ["rows", 3, 2, 4] for n in ("hd", "ctx_t")},
        **{n: ["rows", 2, 3, 4] for n in ("q", "ctx")},
        **{n: ["rows", 2, 3, 3] for n in ("s", "sm")},
        "k": ["rows", 2, 4, 3],
        "qf": ["2*rows", 3, 4],
        "kf": ["2*rows", 4, 3],
        "s3": ["2*rows", 3, 3],
        "r1": ["2*rows", 9],
        "r2": ["rows", 18],
        "e": ["rows", 18],
        **{n: ["rows", 8] for n in ("g0", "g1")},
        **{n: ["rows", 1, 8] for n in ("u0", "u1")},
        **{n: ["rows", 2, 8] for n in ("e0", "e1", "zeros", "w0", "w1")},
    }
    outputs = {
        "out": ["rows", 18],
        "cube": ["rows", 3, 8],
        "attn": ["rows", 3, 8],
        "layers": ["rows", 2, 8],
    }
    graph = onnx.helper.make_graph(
        nodes,
        "patterns",
        [onnx.helper.make_tensor_value_info("x", f, ["rows", 3, 8])],
        [onnx.helper.make_tensor_value_info(n, f, s) for n, s in outputs.items()],
        [onnx.numpy_helper.from_array(v, n) for n, v in c.items()],
        value_info=[onnx.helper.make_tensor_value_info(n, f, s) for n, s in shapes.items()],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 20)], ir_version=10)


def run_graph(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})


def test_simplify_rewrites_each_pattern_and_keeps_every_output_byte() -> None:
    model = patterns_graph()
    simplified = onnx.ModelProto()
    simplified.CopyFrom(model)
    done = simplify(simplified)
    onnx.checker.check_model(simplified, full_check=True)
    assert done == {
        "pow": 2,
        "identity": 1,
        "linear": 3,
        "batched": 1,
        "layer_scatter": 1,
        "noop_reshape": 2,
        "reshape_chain": 1,
        # what only removed nodes read: the 2-D and 3-D operands' Reshapes (4), the Reshape targets of the
        # Reshapes back (3 Concats), the chain's first Reshape, the no-ops' Shapes (2); the layer sum's
        # Wheres, Expands (of the grads and of the zeros) and their target (6)
        "dead": 16,
    }, done
    counts = op_counts(simplified)
    assert counts["Pow"] == 1 and counts["Identity"] == 0 and counts["Expand"] == 0 and counts["Where"] == 0
    assert counts["Reshape"] == 3  # into heads, the merged heads keeping (rows, 3), the chain's last
    for rows in (1, 2, 5):
        x = np.random.default_rng(rows).standard_normal((rows, 3, 8)).astype(np.float32)
        for want, got in zip(run_graph(model, x), run_graph(simplified, x)):
            assert want.tobytes() == got.tobytes()


def test_simplify_leaves_shape_dependent_patterns_alone_without_shapes() -> None:
    """Without the exporter's value_info no Reshape, Expand or MatMul rewrite is made."""
    model = patterns_graph()
    del model.graph.value_info[:]
    done = simplify(model)
    assert done["pow"] == 2 and done["identity"] == 1
    assert done["noop_reshape"] == done["linear"] == done["batched"] == done["layer_scatter"] == 0
    # needs no shapes where the last target holds no 0: into "out", and (rows, 3, 8) back to 2-D
    assert done["reshape_chain"] == 2


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_fixture_step_graphs_are_simplified(kind) -> None:
    """The fixture's graphs come from the exporter with its rewrites: none is left to make."""
    model = onnx.load(str(FIXTURE / REFINE_GRAPH_FILES[f"train_step_{kind}"]), load_external_data=False)
    assert not any(simplify(model).values())
