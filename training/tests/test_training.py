"""Every training stage runs, resumes from its checkpoint, and leaves an exportable checkpoint folder."""

import json
import random
import shutil

import pytest
import torch
from safetensors.torch import load_file

from hypert5 import checkpoint
from hypert5.checkpoint import BundleSettings
from hypert5.config import LoraSpec, PrefixSpec, T5Dims
from hypert5.export import check_bundle, export_bundle
from hypert5.train import evaluate, everyday, finetune, hyperpretrain, mtf_fewshot, pretrain
from hypert5.train.text import span_corrupt

TINY = BundleSettings(
    dims=T5Dims(vocab_size=384, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=1, num_decoder_layers=1),
    lora=LoraSpec(rank=2, alpha=4.0),
    prefix=PrefixSpec(num_positions=2),
    head_hidden=16,
    name="tiny-trained",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    settings_file = root / "settings.json"
    settings_file.write_text(json.dumps(TINY.to_json()))
    run = root / "run"
    common = ["--run", str(run), "--threads", "1"]
    pretrain.main([*common, "--steps", "2", "--batch", "4", "--settings", str(settings_file)])
    pretrain.main([*common, "--steps", "4", "--batch", "4", "--settings", str(settings_file)])  # resumes at 2
    shutil.copyfile(run / "downstream.safetensors", root / "phase1.safetensors")
    pretrain.main(
        [
            *common,
            "--phase",
            "stage0c",
            "--init",
            str(root / "phase1.safetensors"),
            "--steps",
            "2",
            "--batch",
            "4",
            "--in-context",
            "0.5",
            "--copy",
            "0.5",
        ]
    )  # a later phase, as train-default.sh
    for kind in ("lora", "prefix"):
        hyperpretrain.main([*common, "--kind", kind, "--steps", "2", "--batch", "2"])
        finetune.main([*common, "--kind", kind, "--steps", "2", "--episodes", "2", "--queries", "2"])
    mtf_fewshot.main([*common, "--steps", "1", "--batch", "2"])
    return run


def test_stages_resume_and_record_provenance(run) -> None:
    assert torch.load(run / "stage0" / "state.pt", weights_only=False)["step"] == 4
    stages = json.loads((run / "hypert5.json").read_text())["provenance"]["stages"]
    assert torch.load(run / "stage0c" / "state.pt", weights_only=False)["step"] == 2
    assert "0.5 copying" in stages["stage0c_pretrain"]["mixture"] and stages["stage0c_pretrain"]["initialized_from"]
    assert {
        "stage0_pretrain",
        "stage0c_pretrain",
        "stage1_hyperpretrain_lora",
        "stage2_finetune_prefix",
        "baseline_mtf_fewshot",
    } <= set(stages)


def test_evaluation_reports_every_comparison(run) -> None:
    evaluate.main(
        [
            "--run",
            str(run),
            "--tasks-per-family",
            "1",
            "--queries",
            "1",
            "--shots",
            "1",
            "3",
            "--tune-steps",
            "1",
            "--threads",
            "1",
            "--tune-lr-lora",
            "0.003",
        ]
    )
    result = json.loads((run / "eval.json").read_text())
    assert result["tune_lr"] == {"lora": 0.003, "prefix": evaluate.TUNE_LR["prefix"]}  # one lr per kind
    scores = result["exact_match_percent"]
    assert set(scores) == {"k=1", "k=3"}
    assert {
        "frozen",
        "in_context_stage0",
        "in_context_mtf",
        "hyper_lora",
        "hyper_prefix",
        "tuned_lora_random_init",
        "tuned_prefix_hyper_init",
    } <= set(scores["k=3"])
    # Per family: every held-out family, every comparison, exact match and similarity as percentages;
    # one query per family here, so the overall exact match is the mean of the families'.
    per_family = result["per_family"]["k=3"]
    assert set(per_family) == set(result["families"])
    for name, value in scores["k=3"].items():
        cells = [per_family[f][name] for f in result["families"]]
        assert all(c["exact"] in (0.0, 100.0) and 0.0 <= c["similarity"] <= 100.0 for c in cells)
        assert all(c["similarity"] == 100.0 for c in cells if c["exact"] == 100.0)
        assert value == round(sum(c["exact"] for c in cells) / len(cells), 1)
    assert "per_family" not in json.loads((run / "hypert5.json").read_text())["provenance"]["stages"]["evaluation"]


def test_similarity_gives_partial_credit() -> None:
    assert evaluate.similarity("Lovelace, A.", "Lovelace, A.") == 1.0
    assert evaluate.similarity("", "abc") == 0.0
    assert evaluate.similarity("Lovelace, Ada", "Lovelace, A.") == 2 * 11 / 25  # "Lovelace, A" matches


def test_minibatch_tuning_learns_the_pool(run) -> None:
    """tune() with a batch draws that many pairs per step and still fits the whole pool: the mean loss on
    every pair falls (the capacity ceiling tunes this way on k + 64 examples)."""
    import torch.nn.functional as F

    from hypert5.generate import pad_batch
    from hypert5.train.settings import load_downstream, read_settings
    from hypert5.train.text import encode, targets

    model, settings = load_downstream(run), read_settings(run)
    pool = [(f"item {n}", f"{n}!") for n in range(8)]
    ids, mask = pad_batch([encode(x, 256) for x, _ in pool])
    decoder_in, labels = targets([encode(y, 64) for _, y in pool])

    def loss(adapter):
        with torch.no_grad():
            logits = model(ids, mask, decoder_in, evaluate.repeat(adapter, len(pool)))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100).item()

    start = evaluate.random_init("lora", settings, torch.Generator().manual_seed(0))
    trained = evaluate.tune(model, start, pool, 40, 3e-2, batch=3, rng=random.Random(0))
    assert loss(trained) < loss(start) - 0.1
    assert evaluate.tune(model, start, pool, 0, 3e-2, batch=3)["lora.encoder.self.q.b"].abs().sum() == 0


def test_everyday_gate_answers_every_request_and_fails_unless_all_are_right(run, tmp_path, capsys) -> None:
    result = everyday.answers(run, "prefix")
    tasks = json.loads(everyday.EVERYDAY.read_text())
    assert [a.query for a in result] == [q for t in tasks for q, _ in t["queries"]]
    right = tmp_path / "right.json"  # the tiny model's own answers, as if they were the wanted ones
    right.write_text(
        json.dumps(
            [{"name": "own", "examples": tasks[0]["examples"], "queries": [[a.query, a.got] for a in result[:2]]}]
        )
    )
    assert everyday.main(["--run", str(run), "--kind", "prefix", "--tasks", str(right)]) == 0
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps(
            [{"name": "own", "examples": tasks[0]["examples"], "queries": [[result[0].query, result[0].got + "?"]]}]
        )
    )
    assert everyday.main(["--run", str(run), "--kind", "prefix", "--tasks", str(wrong)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith("(prefix): 0/1 right")


def test_evaluation_on_training_families_without_tuning(run) -> None:
    """--split train measures the generalisation gap on fresh tasks of the training families, in its
    own file; --tune-shots 0 skips the costly gradient-tuning comparisons."""
    evaluate.main(
        [
            "--run",
            str(run),
            "--split",
            "train",
            "--tasks-per-family",
            "1",
            "--queries",
            "1",
            "--shots",
            "1",
            "--tune-shots",
            "0",
            "--threads",
            "1",
        ]
    )
    result = json.loads((run / "eval_train.json").read_text())
    assert result["split"] == "train" and len(result["families"]) > 14
    assert not any(name.startswith("tuned_") for name in result["exact_match_percent"]["k=1"])
    assert json.loads((run / "eval.json").read_text())["split"] == "val"


def test_evaluation_on_fresh_programs(run) -> None:
    """--split programs measures new compositions inside the program space stage 2 draws from: every
    task a fresh program of the language, reported as one "family" named after it."""
    episode = evaluate.fresh_episode(random.Random(0), "programs", "tokens", 3, 2)
    assert episode.family == "token_program" and len(episode.demos) == 3 and len(episode.queries) == 2
    evaluate.main(
        [
            "--run",
            str(run),
            "--split",
            "programs",
            "--program-language",
            "fields",
            "--tasks-per-family",
            "2",
            "--queries",
            "1",
            "--shots",
            "1",
            "--tune-shots",
            "1",
            "--tune-steps",
            "1",
            "--threads",
            "1",
        ]
    )
    result = json.loads((run / "eval_programs.json").read_text())
    assert result["split"] == "programs" and result["program_language"] == "fields"
    assert result["families"] == ["fields"] and set(result["per_family"]["k=1"]) == {"fields"}
    assert {"hyper_lora", "tuned_prefix_random_init"} <= set(result["exact_match_percent"]["k=1"])
    assert all(v in (0.0, 50.0, 100.0) for v in result["exact_match_percent"]["k=1"].values())  # 2 queries


def test_prefetch_workers_train_exactly_what_one_process_trains(run, tmp_path) -> None:
    """--workers builds batches in other processes; the weights after two more stage-2 steps must be
    the ones the single-process run gets."""
    weights = {}
    for workers in ("0", "2"):
        copy = tmp_path / f"w{workers}"
        shutil.copytree(run, copy)
        finetune.main(
            [
                "--run",
                str(copy),
                "--threads",
                "1",
                "--kind",
                "lora",
                "--steps",
                "4",
                "--episodes",
                "2",
                "--queries",
                "2",
                "--workers",
                workers,
            ]
        )
        assert torch.load(copy / "stage2_lora" / "state.pt", weights_only=False)["step"] == 4
        weights[workers] = load_file(str(copy / "hyper_lora.safetensors"))
    assert all(torch.allclose(weights["0"][k], weights["2"][k], atol=1e-6) for k in weights["0"])
    assert any(
        not torch.equal(weights["0"][k], load_file(str(run / "hyper_lora.safetensors"))[k]) for k in weights["0"]
    )  # the two steps did train


def test_a_later_finetune_phase_on_random_programs(run, tmp_path) -> None:
    """--phase continues from the hypermodel stage 2 left, in its own checkpoint folder and provenance
    key (stage 2's record stays); --programs mixes in random string programs."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    finetune.main(
        [
            "--run",
            str(copy),
            "--threads",
            "1",
            "--kind",
            "lora",
            "--phase",
            "stage2b",
            "--programs",
            "1",
            "--steps",
            "2",
            "--episodes",
            "2",
            "--queries",
            "2",
        ]
    )
    assert torch.load(copy / "stage2b_lora" / "state.pt", weights_only=False)["step"] == 2
    stages = json.loads((copy / "hypert5.json").read_text())["provenance"]["stages"]
    assert stages["stage2b_finetune_lora"]["programs"] == 1 and "stage2_finetune_lora" in stages
    with pytest.raises(SystemExit):
        finetune.main(["--run", str(copy), "--kind", "lora", "--programs", "1.5"])


def test_trained_checkpoint_exports_a_valid_bundle(run, tmp_path) -> None:
    models = checkpoint.load(run)
    export_bundle(models, tmp_path / "bundle", log=lambda *_: None)
    check_bundle(models, tmp_path / "bundle", log=lambda *_: None)


def test_span_corruption_round_trips() -> None:
    import random

    src, tgt = span_corrupt("Invoice 42950 from Lopez-Richardson", random.Random(0), 384)
    assert 383 in src and 383 in tgt and src[-1] == tgt[-1] == 1
    # Filling each sentinel in the source with its span from the target restores the text.
    spans, current = {}, None
    for t in tgt[:-1]:
        if t >= 259:
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    restored = [x for t in src[:-1] for x in (spans[t] if t >= 259 else [t])]
    assert bytes(t - 3 for t in restored).decode() == "Invoice 42950 from Lopez-Richardson"


@pytest.mark.parametrize("source", ["corpus", "random"])
def test_copy_items_are_their_own_target(source: str) -> None:
    """--copy: with only copying in the mixture, every label sequence is its input (eos included)."""
    ids, _, decoder_in, _ = pretrain.make_batch(TINY, 0, 0, 3, in_context=0.0, copy=1.0, copy_source=source)
    assert torch.equal(decoder_in[:, 1:], ids[:, :-1])  # teacher forcing shifts the target, which is the input


def test_stage0_and_the_baseline_can_mix_in_random_programs(run, tmp_path, monkeypatch) -> None:
    """--programs in stage 0 and T5-MTF-Few-shot: that share of the in-context episodes are random
    programs (the prompts are theirs), and without it none is drawn."""
    from hypert5.tasks import mixture
    from hypert5.train.text import in_context_prompt

    drawn = []
    for language, sample in list(mixture.PROGRAM_LANGUAGES.items()):

        def recording(*args, sample=sample, **kwargs):
            drawn.append(sample(*args, **kwargs))
            return drawn[-1]

        monkeypatch.setitem(mixture.PROGRAM_LANGUAGES, language, recording)
    for language, family in (("fields", "random_program"), ("tokens", "token_program")):
        drawn.clear()
        ids, mask, _, _ = pretrain.make_batch(TINY, 0, 0, 4, in_context=1.0, programs=1.0, language=language)
        assert len(drawn) == 4 and {ep.family for ep in drawn} == {family}
        prompts = [bytes(t - 3 for t in row[: int(m.sum()) - 1]).decode() for row, m in zip(ids.tolist(), mask)]
        assert prompts == [in_context_prompt(TINY.hyper_input, ep.demos, ep.queries[0][0]) for ep in drawn]
    pretrain.make_batch(TINY, 0, 1, 8, in_context=1.0)
    assert len(drawn) == 4
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    pretrain.main(
        [
            "--run",
            str(copy),
            "--threads",
            "1",
            "--phase",
            "stage0p",
            "--steps",
            "1",
            "--batch",
            "2",
            "--programs",
            "0.5",
            "--program-language",
            "tokens",
        ]
    )
    mtf_fewshot.main(["--run", str(copy), "--threads", "1", "--steps", "1", "--batch", "2", "--programs", "0.5"])
    stages = json.loads((copy / "hypert5.json").read_text())["provenance"]["stages"]
    assert "0.5 of them random tokens programs" in stages["stage0p_pretrain"]["mixture"]
    assert stages["stage0p_pretrain"]["program_language"] == "tokens"
    assert stages["baseline_mtf_fewshot"]["programs"] == 0.5
    assert stages["baseline_mtf_fewshot"]["program_language"] == "fields"
    for stage in (pretrain, mtf_fewshot):
        with pytest.raises(SystemExit):
            stage.main(["--run", str(copy), "--programs", "-0.1"])
