"""Real data and real checkpoints: the readers on P3 / Super-NaturalInstructions / corpora, a run made
from a transformers T5 folder (init_run), stages 1 and 2 on that data, and the export to a bundle.

Data: the committed subset tests/fixtures/data always, and the shared samples (../shared/data from the
repository root) as well when they are there.
"""

import json
import math
import random
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file, save_file

from hypert5.data import def_2pos, read_corpus, read_p3, read_sni
from hypert5.examples import HyperInputFormat
from hypert5.tokenizer import ByteTokenizer, HFTokenizer
from hypert5.train import finetune, hyperpretrain, init_run, loop
from hypert5.train.settings import load_downstream, read_settings
from hypert5.train.sources import CorpusDocuments, TaskEpisodes
from hypert5.train.text import EOS, TextCodec

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SHARED = REPO.parent / "shared" / "data"
ROOTS = [pytest.param((FIXTURES / "p3", FIXTURES / "sni"), id="fixtures")]
if (SHARED / "p3-t0-sample").is_dir() and (SHARED / "sni-sample").is_dir():
    ROOTS.append(pytest.param((SHARED / "p3-t0-sample", SHARED / "sni-sample"), id="shared"))
# The stages run once on each run folder: on the fixtures, and on the shared samples when present.
P3_DATA, SNI_DATA = ROOTS[-1].values[0]
MRPC, COMMON_GEN = "glue_mrpc_equivalent", "common_gen_Given_concepts_type_1"  # in both data sets
SNI_TASK = "task664_mmmlu_answer_generation_abstract_algebra"
CORPUS = (
    "The quick brown fox jumps over the lazy dog while the farmer counts his sheep twice.\n\n"
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
    "I thought I would sail about a little and see the watery part of the world.\n\n"
    "It was a bright cold day in April, and the clocks were striking thirteen.\n"
)


# ---- readers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ROOTS)
def test_p3_reader_infers_answer_choices_and_cleans_completions(root) -> None:
    templates = {t.name: t for t in read_p3(root[0])}
    assert {MRPC, COMMON_GEN} <= set(templates)
    assert all(len(t.examples) >= 2 for t in templates.values())
    mrpc = templates[MRPC]
    assert len(mrpc.examples) == 16
    assert mrpc.is_classification and mrpc.answer_choices == ["equivalent", "not equivalent"]
    assert not templates[COMMON_GEN].is_classification  # free generation: every completion differs
    assert not any("<|endoftext|>" in y for t in templates.values() for _, y in t.examples)
    if root[0].name == "p3-t0-sample":
        assert len(templates) == 283 and sum(t.is_classification for t in templates.values()) == 73


@pytest.mark.parametrize("root", ROOTS)
def test_sni_reader_and_def_2pos(root) -> None:
    tasks = {t.name: t for t in read_sni(root[1])}
    task = tasks[SNI_TASK]
    assert len(task.instances) == (112 if root[1].name == "sni-sample" else 10)
    assert len(task.positives) == 5 and all(outputs for _, outputs in task.instances)
    text = def_2pos(task)
    assert text.startswith("Definition: The following are multiple choice questions (with answers) about")
    (x1, y1), (x2, y2) = task.positives[:2]
    assert (
        f"\n\nPositive Example 1 -\nInput: {x1}\nOutput: {y1}\n\nPositive Example 2 -\nInput: {x2}\nOutput: {y2}"
        in text
    )
    assert "Positive Example 3" not in text


def test_corpus_reader_txt_jsonl_folder_and_glob(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("first document\nstill first\n\n\nsecond document\r\n  \r\nthird document\n")
    (tmp_path / "b.jsonl").write_text('{"text": "a json document"}\n\n{"text": "x"}\n')
    (tmp_path / "ignored.csv").write_text("not,read\n")
    assert read_corpus(tmp_path / "a.txt") == ["first document\nstill first", "second document", "third document"]
    assert len(read_corpus(tmp_path)) == 5
    assert read_corpus(str(tmp_path / "*.jsonl"), min_chars=2) == ["a json document"]
    with pytest.raises(ValueError, match="no documents of at least 100"):
        read_corpus(tmp_path, min_chars=100)
    with pytest.raises(FileNotFoundError, match="no .txt/.jsonl files"):
        read_corpus(tmp_path / "*.md")


def test_malformed_input_names_file_and_line(tmp_path) -> None:
    (tmp_path / "c.jsonl").write_text('{"text": "ok"}\n{"txt": "no text field"}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:2: expected a JSON object with a \"text\" field"):
        read_corpus(tmp_path / "c.jsonl")
    (tmp_path / "t.jsonl").write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "a", "completion": \n')
    with pytest.raises(ValueError, match=r"t\.jsonl:3: expected a JSON object with \"prompt\" and \"completion\""):
        read_p3(tmp_path / "t.jsonl")
    (tmp_path / "s.json").write_text('{\n  "Definition": ["d"],\n  "Instances": [,]\n}\n')
    with pytest.raises(ValueError, match=r"s\.json:3: not valid JSON"):
        read_sni(tmp_path / "s.json")
    (tmp_path / "s.json").write_text('{"Definition": ["d"], "Instances": []}')
    with pytest.raises(ValueError, match=r"s\.json: not a Super-NaturalInstructions task file .*Positive Examples"):
        read_sni(tmp_path / "s.json")


# ---- data sources of the stages -----------------------------------------------------------------


def test_corpus_cuts_are_consecutive_and_fit_the_limits(tmp_path) -> None:
    (tmp_path / "c.txt").write_text(CORPUS)
    codec = TextCodec(ByteTokenizer(3), context_limit=40, source_limit=16, target_limit=8)
    docs = CorpusDocuments(tmp_path / "c.txt", codec, " || ")
    rng = random.Random(0)
    for _ in range(50):
        context, source, target = docs.sample(rng)
        assert len(context) <= 40 and len(source) <= 16 and len(target) <= 8
        assert context[-1] == source[-1] == target[-1] == EOS and min(len(source), len(target)) >= 2
        b, c = (codec.tokenizer.decode(x[:-1]) for x in (source, target))
        a, d = codec.tokenizer.decode(context[:-1]).split(" || ")  # the end of A, the start of D
        assert a and d and any(a + b + c + d in doc for doc in CORPUS.split("\n\n"))
    # The default model's limits give the generated corpus' segment lengths: B 16-64, C 8-48 bytes.
    wide = CorpusDocuments(tmp_path / "c.txt", TextCodec(ByteTokenizer(3), 1024, 256, 64), "\n")
    lengths = [(len(s) - 1, len(t) - 1) for s, t in (wide.cut(list(range(3, 2003)), rng)[1:] for _ in range(50))]
    assert all(16 <= b <= 64 and 8 <= c <= 48 for b, c in lengths)


@pytest.mark.parametrize("root", ROOTS)
def test_p3_episodes_clip_k_and_use_the_first_target(root) -> None:
    fmt = HyperInputFormat(input_prefix="<<", output_prefix=">>", example_separator="\n", max_examples=16)
    rng = random.Random(0)
    many = TaskEpisodes(f"p3:{root[0] / (MRPC + '.jsonl')}", fmt, k_min=30, k_max=30)
    context, pairs = many.sample(rng, queries=4)
    assert context.count("<<") == 12 and len(pairs) == 4  # 16 examples: 4 queries leave 12 demonstrations
    assert all(y in ("equivalent", "not equivalent") for _, y in pairs)
    capped = TaskEpisodes(f"p3:{root[0] / (MRPC + '.jsonl')}", HyperInputFormat("<<", ">>", max_examples=3), 1, 8)
    assert all(capped.sample(rng, 2)[0].count("<<") <= 3 for _ in range(10))
    held_out = TaskEpisodes(f"p3:{root[0]}", fmt, 1, 3, exclude=[MRPC])
    assert MRPC not in {t.name for t in held_out.tasks} and held_out.describe()["excluded"] == [MRPC]
    with pytest.raises(ValueError, match="--exclude names no task"):
        TaskEpisodes(f"p3:{root[0]}", fmt, 1, 3, exclude=["no_such_template"])


def test_p3_templates_without_targets_are_dropped(tmp_path) -> None:
    empty = "\n".join(json.dumps({"prompt": f"q{i}", "completion": "<|endoftext|>"}) for i in range(4))
    (tmp_path / "empty.jsonl").write_text(empty + "\n")
    shutil.copy(FIXTURES / "p3" / f"{COMMON_GEN}.jsonl", tmp_path)
    tasks = TaskEpisodes(f"p3:{tmp_path}", HyperInputFormat(), 1, 2)
    assert [t.name for t in tasks.tasks] == [COMMON_GEN] and tasks.dropped == ["empty"]
    with pytest.raises(ValueError, match="no task left"):
        TaskEpisodes(f"p3:{tmp_path}", HyperInputFormat(), 1, 2, exclude=[COMMON_GEN])
    with pytest.raises(ValueError, match="must be p3:PATH or sni:PATH"):
        TaskEpisodes(str(tmp_path), HyperInputFormat(), 1, 2)


@pytest.mark.parametrize("root", ROOTS)
def test_sni_episodes_def_2pos_contexts(root) -> None:
    task = {t.name: t for t in read_sni(root[1])}[SNI_TASK]
    fmt = HyperInputFormat()
    rng = random.Random(0)
    raw = TaskEpisodes(f"sni:{root[1]}", fmt, 1, 1, sni_context="raw")
    context, pairs = raw.sample(random.Random(3), queries=3)
    assert context.startswith("Definition: ") and "Positive Example 2 -" in context and len(pairs) == 3
    # Default: Def+2Pos as the run's example format, the way the service and the evaluation harness send it.
    examples = TaskEpisodes(f"sni:{root[1] / (SNI_TASK + '.json')}", fmt, 1, 1)
    context, pairs = examples.sample(rng, queries=20)
    (x1, y1), (x2, y2) = task.positives[:2]
    assert context == f"in: Definition: {task.definition}\n\n{x1} out: {y1}\nin: {x2} out: {y2}"
    firsts = dict((x, ys[0]) for x, ys in task.instances)
    assert len(pairs) == min(20, len(task.instances)) and all(firsts[x] == y for x, y in pairs)


# ---- runs from transformers checkpoints ---------------------------------------------------------


def _hf_t5(folder: Path, vocab_size: int, style: str = "transformers5") -> Path:
    """A tiny random transformers T5 saved with save_pretrained. style "flan": config.json and weights
    as T5 v1.1 / Flan-T5 ship them (untied lm_head); "v1.0": tied and scaled, relu."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        num_heads=2,
        d_ff=48,
        num_layers=1,
        num_decoder_layers=1,
        feed_forward_proj="relu" if style == "v1.0" else "gated-gelu",
        dropout_rate=0.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    if style != "transformers5":
        raw = json.loads((folder / "config.json").read_text())
        raw.pop("scale_decoder_outputs", None)
        raw["tie_word_embeddings"] = style == "v1.0"
        (folder / "config.json").write_text(json.dumps(raw))
    if style == "flan":
        state = load_file(str(folder / "model.safetensors"))
        state["lm_head.weight"] = torch.randn_like(state["shared.weight"])
        save_file(state, str(folder / "model.safetensors"))
    return folder


def _train_tokenizer(
    path: Path, texts: list[str], vocab_size: int = 400, specials: tuple[str, ...] = ("<pad>", "</s>", "<unk>")
) -> None:
    """A tiny SentencePiece-style Unigram tokenizer with T5's special ids: pad 0, eos 1, unk 2."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Replace("\n", " ")
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        texts, trainers.UnigramTrainer(vocab_size=vocab_size, unk_token="<unk>", special_tokens=list(specials))
    )
    tok.save(str(path))


def _spiece_model(path: Path) -> None:
    """A SentencePiece model file (protobuf), as T5 v1.1 LM-adapted checkpoints ship, built by hand."""
    from transformers.convert_slow_tokenizer import import_protobuf

    proto = import_protobuf().ModelProto()
    for piece, kind in (("<pad>", 3), ("</s>", 3), ("<unk>", 2)):
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    for i, piece in enumerate(["▁the", "▁movie", "▁good", "▁", "e", "o", "d", "g", "t", "h", "m", "v", "i"]):
        proto.pieces.add(piece=piece, score=-1.0 - i / 10, type=1)
    proto.trainer_spec.model_type, proto.trainer_spec.unk_id = 1, 2
    proto.normalizer_spec.add_dummy_prefix = proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True
    path.write_bytes(proto.SerializeToString())


@pytest.mark.parametrize("style", ["transformers5", "flan", "v1.0"])
def test_init_run_downstream_matches_transformers(tmp_path, style) -> None:
    from transformers import T5ForConditionalGeneration

    folder = _hf_t5(tmp_path / "hf", 384, style)
    settings = init_run.init_run(folder, tmp_path / "run")
    assert settings.tokenizer == {"type": "byte", "offset": 3}  # 384 ids and no tokenizer.json: ByT5
    assert (settings.hyper_input.max_tokens, settings.encoder_max_tokens) == (2048, 1024)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["downstream.safetensors", "hypert5.json"]
    hf = T5ForConditionalGeneration.from_pretrained(str(folder)).eval()
    ours = load_downstream(tmp_path / "run")
    ids = torch.randint(3, 384, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :4]).logits
        assert torch.allclose(ours(ids, mask, ids[:, :4]), expected, atol=1e-4)


def test_init_run_converts_spiece_model(tmp_path) -> None:
    folder = _hf_t5(tmp_path / "hf", 512, "flan")
    _spiece_model(folder / "spiece.model")
    settings = init_run.init_run(
        folder, tmp_path / "run", name="lm-adapt-like", lora_rank=4, prefix_positions=3, hyper_max_tokens=300
    )
    assert settings.tokenizer == {"type": "tokenizers", "file": "tokenizer.json"} and settings.name == "lm-adapt-like"
    assert (settings.lora.rank, settings.lora.alpha, settings.prefix.num_positions) == (4, 8.0, 3)
    assert (settings.hyper_input.max_tokens, settings.encoder_max_tokens, settings.generation["max_new_tokens"]) == (
        300,
        512,
        128,
    )
    tok = HFTokenizer(tmp_path / "run" / "tokenizer.json")
    assert tok.encode("the good movie") == [3, 5, 4] and tok.decode([3, 5, 4, 1]) == "the good movie"
    assert tok.encode("<extra_id_0>") == [16 + 99]  # 16 pieces, then the sentinels counting down


def test_init_run_refuses_what_is_not_a_t5_checkpoint(tmp_path, capsys) -> None:
    with pytest.raises(init_run.NotAT5Checkpoint, match="no config.json"):
        init_run.init_run(tmp_path, tmp_path / "run")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(init_run.NotAT5Checkpoint, match="model_type='bert'"):
        init_run.init_run(tmp_path, tmp_path / "run")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(init_run.NotAT5Checkpoint, match="no weights"):
        init_run.init_run(tmp_path, tmp_path / "run")
    folder = _hf_t5(tmp_path / "hf", 512)
    with pytest.raises(init_run.NotAT5Checkpoint, match="neither tokenizer.json nor spiece.model"):
        init_run.init_run(folder, tmp_path / "run")
    _train_tokenizer(folder / "tokenizer.json", ["some text to learn from"] * 4, 40, ("</s>", "<pad>", "<unk>"))
    with pytest.raises(init_run.NotAT5Checkpoint, match="id 0 is '</s>', T5 needs '<pad>'"):
        init_run.init_run(folder, tmp_path / "run")
    with pytest.raises(SystemExit) as exit_:
        init_run.main(["--checkpoint", str(tmp_path / "nowhere"), "--run", str(tmp_path / "run")])
    assert exit_.value.code == 2 and "nowhere: not a folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def losses():
    """Every loss the hypermodel stages compute in this module (the loop logs only every 50 steps)."""
    seen: list[float] = []

    def recording(module, loss_fn, *args, **kwargs):
        def wrapped(step: int) -> torch.Tensor:
            loss = loss_fn(step)
            seen.append(loss.item())
            return loss

        return loop.train(module, wrapped, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        for stage in (hyperpretrain, finetune):
            patch.setattr(stage, "train", recording)
        yield seen


def _stages(run: Path, corpus: Path, p3: Path, sni: Path, losses: list[float]) -> None:
    common = ["--run", str(run), "--threads", "1", "--steps", "2"]
    before = len(losses)
    hyperpretrain.main([*common, "--kind", "lora", "--batch", "2", "--corpus", str(corpus)])
    finetune.main(
        [
            *common,
            "--kind",
            "prefix",
            "--episodes",
            "2",
            "--queries",
            "2",
            "--data",
            f"p3:{p3}",
            "--k-min",
            "2",
            "--k-max",
            "4",
            "--exclude",
            COMMON_GEN,
        ]
    )
    finetune.main([*common, "--kind", "lora", "--episodes", "2", "--queries", "2", "--data", f"sni:{sni}"])
    new = losses[before:]
    assert len(new) == 6 and all(math.isfinite(x) for x in new), new
    for kind, stages in (("lora", ("stage1_lora", "stage2_lora")), ("prefix", ("stage2_prefix",))):
        assert (run / f"hyper_{kind}.safetensors").stat().st_size > 0
        assert all(torch.load(run / s / "state.pt", weights_only=False)["step"] == 2 for s in stages)
    recorded = read_settings(run).provenance["stages"]
    assert recorded["stage1_hyperpretrain_lora"]["corpus"] == str(corpus)
    assert recorded["stage2_finetune_prefix"]["excluded"] == [COMMON_GEN]
    assert recorded["stage2_finetune_lora"]["kind"] == "sni"


def test_byte_run_trains_on_real_data(tmp_path_factory, losses) -> None:
    root = tmp_path_factory.mktemp("byte")
    run = root / "run"
    init_run.main(
        [
            "--checkpoint",
            str(_hf_t5(root / "hf", 384)),
            "--run",
            str(run),
            "--lora-rank",
            "2",
            "--prefix-positions",
            "2",
            "--head-hidden",
            "16",
            "--hyper-max-tokens",
            "512",
            "--encoder-max-tokens",
            "256",
            "--max-new-tokens",
            "32",
        ]
    )
    (root / "corpus.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in CORPUS.split("\n\n")))
    _stages(run, root / "corpus.jsonl", FIXTURES / "p3", FIXTURES / "sni", losses)


def test_tokenizers_run_trains_and_exports_a_valid_bundle(tmp_path_factory, losses) -> None:
    from hypert5 import export

    root = tmp_path_factory.mktemp("tokenizers")
    folder = _hf_t5(root / "hf", 512)
    texts = [CORPUS] + [x + " " + y for t in read_p3(P3_DATA) for x, y in t.examples[:4]]
    texts += [def_2pos(t) for t in read_sni(SNI_DATA)]
    _train_tokenizer(folder / "tokenizer.json", texts)
    run = root / "run"
    init_run.main(
        [
            "--checkpoint",
            str(folder),
            "--run",
            str(run),
            "--name",
            "tiny-real",
            "--lora-rank",
            "2",
            "--prefix-positions",
            "2",
            "--head-hidden",
            "16",
            "--hyper-max-tokens",
            "256",
            "--encoder-max-tokens",
            "128",
            "--max-new-tokens",
            "16",
        ]
    )
    assert (run / "tokenizer.json").read_bytes() == (folder / "tokenizer.json").read_bytes()
    codec = TextCodec.for_run(run, read_settings(run))
    assert isinstance(codec.tokenizer, HFTokenizer) and (codec.context_limit, codec.source_limit) == (256, 128)
    (root / "corpus.txt").write_text(CORPUS)
    _stages(run, root / "corpus.txt", P3_DATA, SNI_DATA, losses)
    assert export.main(["--checkpoint", str(run), "--out", str(root / "bundle")]) == 0
    manifest = json.loads((root / "bundle" / "manifest.json").read_text())
    assert manifest["name"] == "tiny-real" and manifest["tokenizer"] == {"type": "tokenizers", "file": "tokenizer.json"}
    assert manifest["encoder_input"]["max_tokens"] == 128 and manifest["hyper_input"]["max_tokens"] == 256
    assert "tokenizer.json" in manifest["files"] and "stage2_finetune_lora" in manifest["provenance"]["stages"]
    _serves_the_golden_decodes(root / "bundle", manifest)


def _serves_the_golden_decodes(bundle: Path, manifest: dict) -> None:
    """Checkpoint -> served bundle, across the boundary: the TypeScript service, tokenizing with the run's
    tokenizer.json, decodes what PyTorch decoded at export (golden.json), with and without adapters."""
    from service import running_service

    cases = json.loads((bundle / "golden.json").read_text())["cases"]
    assert sum(len(c["token_ids"]) for c in cases) > 2 * len(cases)  # real decodes, not bare eos
    with running_service(bundle) as service:

        def post(path: str, body: dict, name: str) -> dict:
            request = urllib.request.Request(
                f"{service.url}{path}", json.dumps(body).encode(), {"content-type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                raise AssertionError(f"{name}: {path} {e.code} {e.read().decode()}") from None

        for case in cases:
            model = manifest["name"]
            if case["adapter"]:
                model = post(
                    "/v1/adapters",
                    {"examples": case["adapter"]["examples"], "kind": case["adapter"]["kind"]},
                    case["name"],
                )["id"]
            answer = post(
                "/v1/completions",
                {"model": model, "prompt": case["input"], "temperature": 0, "max_tokens": case["max_new_tokens"]},
                case["name"],
            )
            assert answer["choices"][0]["text"] == case["text"], (case["name"], service.log()[-2000:])
            assert answer["usage"]["completion_tokens"] == len(case["token_ids"]), case["name"]
