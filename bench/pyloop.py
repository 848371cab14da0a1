"""The service's reference points, kept alive next to it so that their cells interleave with the HTTP cells.

  python bench/pyloop.py --bundle DIR --workload W.json --threads N --kind KIND

bench/run.ts starts this once, while the service runs, and sends one JSON command per line on stdin; each
answer is one JSON line on stdout (logs go to stderr). Between commands it waits on stdin and uses no CPU,
so a ratio such as "HTTP tokens/s over ONNX Runtime's Python loop" divides two numbers measured seconds
apart, in every round of the bench, rather than sections minutes apart.

  {"cmd": "loop", "runtime": "ort" | "torch", "batch": b, "adapters": a, "seconds": s}
      the HTTP load's request sequence (request n: task n mod a, bench/http.ts requestFor), b requests at a
      time, greedy, for s seconds: ONNX Runtime's Python loop (hypert5.ort_runtime, the parity reference)
      or PyTorch eager (hypert5.generate.greedy, KV cache)
  {"cmd": "graphs", "batch": b, "past": p, "reps": r}
      the bundle's own graphs alone, at the service's thread setting: one decoder step at batch b (b distinct
      adapters, p past tokens) and one encoder run over b of the load's prompts; medians of r runs
  {"cmd": "flops", "src": s, "new_tokens": t}
      analytic FLOPs of one completion (bench/pybench/flops.py): the encoder over s prompt tokens, then t
      decoder steps
  {"cmd": "exit"}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "training")]

import torch  # noqa: E402
from pybench import flops  # noqa: E402
from pybench.common import load_torch, timed  # noqa: E402
from pybench.eager import request_loop  # noqa: E402

from hypert5.generate import greedy, pad_batch  # noqa: E402
from hypert5.ort_runtime import OrtBundle  # noqa: E402


class Side:
    """The load's tasks as adapters in both runtimes, and the generators over them."""

    def __init__(self, bundle: Path, items: list[dict[str, Any]], threads: int, kind: str):
        torch.set_num_threads(threads)
        self.ort = OrtBundle(bundle, threads)
        self.items, self.kind = items, kind
        self.models, _ = load_torch(bundle, self.ort.manifest)
        fmt = self.models.settings.hyper_input
        self.dims = flops.Dims.from_manifest(self.ort.manifest, self.models.settings.head_hidden)
        pad = self.ort.special["pad"]
        examples = [[tuple(e) for e in it["examples"]] for it in items]
        self.ort_adapters = [self.ort.hyper(kind, ex) for ex in examples]
        with torch.no_grad():
            self.torch_adapters = [
                self.models.hyper[kind](*pad_batch([self.ort.encode_text(fmt.serialize(ex), fmt.max_tokens)], pad))
                for ex in examples
            ]

    def _ort(self, reqs: list[tuple[int, str]], max_tokens: int) -> list[int]:
        out = self.ort.greedy([p for _, p in reqs], [self.ort_adapters[i] for i, _ in reqs], max_tokens)
        return [len(o) for o in out]

    def _torch(self, reqs: list[tuple[int, str]], max_tokens: int) -> list[int]:
        ids, mask = pad_batch([self.ort.encode_text(p) for _, p in reqs], self.ort.special["pad"])
        names = self.torch_adapters[0].keys()
        adapters = {n: torch.cat([self.torch_adapters[i][n] for i, _ in reqs]) for n in names}
        with torch.no_grad():
            return [len(o) for o in greedy(self.models.downstream, ids, mask, adapters, max_tokens)]

    def loop(self, runtime: str, batch: int, adapters: int, seconds: float, max_tokens: int) -> dict[str, Any]:
        gen: Callable[[list[tuple[int, str]]], list[int]] = {"ort": self._ort, "torch": self._torch}[runtime]
        return {
            "runtime": runtime,
            **request_loop(seconds, batch, adapters, self.items, lambda reqs: gen(reqs, max_tokens)),
        }

    def graphs(self, batch: int, past: int, reps: int) -> dict[str, Any]:
        adapters = [self.ort_adapters[j % len(self.ort_adapters)] for j in range(batch)]
        prompts = [self.items[j % len(self.items)]["prompts"][0] for j in range(batch)]
        # The feeds of the greedy step whose past holds `past` tokens: the graphs' own time at that step.
        feeds = self.ort.step_feeds(prompts, adapters, past)
        enc, dec = feeds["encoder"], feeds["decoder"]
        ids = enc["input_ids"]
        return {
            "batch": batch,
            "past": past,
            "src_tokens": int(ids.shape[1]),
            "reps": reps,
            "encoder_ms": timed(lambda: self.ort.sessions["encoder"].run(["cross_key", "cross_value"], enc), reps)[
                "p50_ms"
            ],
            "decoder_ms": timed(lambda: self.ort.sessions[feeds["decoder_graph"]].run(None, dec), reps)["p50_ms"],
        }

    def flops(self, src: int, new_tokens: int) -> dict[str, Any]:
        enc = flops.encoder(self.dims, src, self.kind)
        dec = sum(flops.decoder_step(self.dims, t, src, self.kind) for t in range(1, new_tokens + 1))
        return {
            "src": src,
            "new_tokens": new_tokens,
            "kind": self.kind,
            "encoder": enc,
            "decoder": dec,
            "per_completion": enc + dec,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kind", required=True)
    args = p.parse_args()
    # Answers go to the real stdout; anything a library prints goes to stderr with the logs.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    load = json.loads(Path(args.workload).read_text())["load"]
    side = Side(Path(args.bundle), load["items"], args.threads, args.kind)
    answer.write(json.dumps({"ready": True}) + "\n")
    answer.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            break
        if cmd["cmd"] == "loop":
            out = side.loop(cmd["runtime"], cmd["batch"], cmd["adapters"], cmd["seconds"], load["max_tokens"])
        elif cmd["cmd"] == "graphs":
            out = side.graphs(cmd["batch"], cmd["past"], cmd["reps"])
        elif cmd["cmd"] == "flops":
            out = side.flops(cmd["src"], cmd["new_tokens"])
        else:
            out = {"error": f"unknown command {cmd['cmd']!r}"}
        answer.write(json.dumps(out) + "\n")
        answer.flush()


if __name__ == "__main__":
    main()
