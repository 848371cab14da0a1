"""Analytic FLOPs of the T5 graphs from the manifest dims: matrix multiplies only, 2 FLOPs per multiply-add.

Layer norms, softmax, activations, embeddings and relative position biases are O(d) per token and left out
(under 2 % of the total at these sizes). Symbols: d = d_model, i = num_heads * d_kv, f = d_ff, V = vocab,
r = LoRA rank, P = prefix positions, S = source tokens, T = decoder positions seen by a step (past + 1).

  encoder, per layer and token:   q,k,v,o 4*2*d*i  +  scores and values 2*2*S*i  +  FFN (3 or 2)*2*d*f
                                  [+ LoRA q,v 2*(2*d*r + 2*r*i)] [+ prefix 2*2*P*i]
  cross keys/values, per decoder layer and source token: 2*2*d*i [+ LoRA v 2*d*r + 2*r*i]
  decoder step, per layer:        self q,k,v,o 4*2*d*i + 2*2*T*i  +  cross q,o 2*2*d*i + 2*2*S*i  +  FFN
                                  [+ LoRA self q,v, cross q 3*(2*d*r + 2*r*i)] [+ prefix self, cross 2*2*2*P*i]
  Prefixes with attention "peft" (models/README.md) sit in the decoder self-attention only: no encoder
  term and 2*2*P*i per decoder layer; their hypermodel has decoder-self queries only and no gate outputs.
  LM head, per step:              2*d*V
  hypermodel (body = the T5):     encoder over C context tokens + cross k/v + decoder over Q learned queries
                                  (non-causal: 2*2*Q*i each, cross 2*2*C*i each) + heads 2*d*h + 2*h*out per query
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Dims:
    d: int
    i: int
    f: int
    vocab: int
    enc_layers: int
    dec_layers: int
    heads: int
    ffn_mats: int  # 3 for gated-gelu, 2 for relu
    rank: int
    positions: int
    head_hidden: int
    gated_prefix: bool = True  # manifest adapters.kinds.prefix.attention "gated" (else "peft")

    @classmethod
    def from_manifest(cls, m: dict, head_hidden: int = 128) -> "Dims":
        dims, kinds = m["dims"], m["adapters"]["kinds"]
        return cls(
            d=dims["d_model"],
            i=dims["num_heads"] * dims["d_kv"],
            f=dims["d_ff"],
            vocab=dims["vocab_size"],
            enc_layers=dims["num_layers"],
            dec_layers=dims["num_decoder_layers"],
            heads=dims["num_heads"],
            ffn_mats=3 if dims["feed_forward_proj"] == "gated-gelu" else 2,
            rank=kinds["lora"]["rank"],
            positions=kinds["prefix"]["num_positions"],
            head_hidden=head_hidden,
            gated_prefix=kinds["prefix"].get("attention", "gated") == "gated",
        )

    def ffn(self) -> int:
        return self.ffn_mats * 2 * self.d * self.f

    def lora_pair(self) -> int:
        return 2 * self.d * self.rank + 2 * self.rank * self.i


def encoder(x: Dims, src: int, adapter: str | None = None) -> int:
    """Encoder over ``src`` tokens plus the decoder's cross keys/values (the service's encoder graph)."""
    per_token = 4 * 2 * x.d * x.i + 2 * 2 * src * x.i + x.ffn()
    if adapter == "lora":
        per_token += 2 * x.lora_pair()
    if adapter == "prefix" and x.gated_prefix:
        per_token += 2 * 2 * x.positions * x.i
    cross = 2 * 2 * x.d * x.i + (x.lora_pair() if adapter == "lora" else 0)
    return src * (x.enc_layers * per_token + x.dec_layers * cross)


def decoder_step(x: Dims, seen: int, src: int, adapter: str | None = None) -> int:
    """One decode step of one row that sees ``seen`` self-attention positions (itself included)."""
    per_layer = 4 * 2 * x.d * x.i + 2 * 2 * seen * x.i + 2 * 2 * x.d * x.i + 2 * 2 * src * x.i + x.ffn()
    if adapter == "lora":
        per_layer += 3 * x.lora_pair()
    if adapter == "prefix":
        per_layer += (2 if x.gated_prefix else 1) * 2 * 2 * x.positions * x.i
    return x.dec_layers * per_layer + 2 * x.d * x.vocab


def query(x: Dims, src: int, new_tokens: int, adapter: str | None = None) -> int:
    """A whole query: encode ``src`` tokens, then ``new_tokens`` decode steps."""
    return encoder(x, src, adapter) + sum(decoder_step(x, t, src, adapter) for t in range(1, new_tokens + 1))


def hypermodel(x: Dims, ctx: int, kind: str) -> int:
    """One adapter from ``ctx`` tokens of serialized examples."""
    sites = x.enc_layers + 2 * x.dec_layers  # encoder.self, decoder.self, decoder.cross
    if kind == "lora":
        q, out = sites, 2 * (x.d * x.rank + x.rank * x.i)
    elif x.gated_prefix:
        q, out = sites * x.positions, 2 * x.i + x.heads
    else:  # decoder.self only, keys and values
        q, out = x.dec_layers * x.positions, 2 * x.i
    dec = q * x.dec_layers * (4 * 2 * x.d * x.i + 2 * 2 * q * x.i + 2 * 2 * x.d * x.i + 2 * 2 * ctx * x.i + x.ffn())
    heads = q * (2 * x.d * x.head_hidden + 2 * x.head_hidden * out)
    return encoder(x, ctx) + dec + heads


def adapter_bytes(m: dict, kind: str) -> int:
    """float32 bytes of one adapter's tensors, from the manifest."""
    total = 0
    for t in m["adapters"]["kinds"][kind]["tensors"]:
        n = 1
        for s in t["shape"]:
            n *= s
        total += 4 * n
    return total
