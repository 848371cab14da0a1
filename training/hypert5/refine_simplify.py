"""Rewrites of an exported training-step graph (``refine_graph``) that leave every output bit for bit as it
was and that ONNX Runtime's own optimizer (level "all", as the service opens the graph) does not make.

A step of the small T5 is thousands of small nodes, so what a node costs to launch is a large share of
the step; on models/default the rewrites take a step from 2,606 nodes to about 2,100 and about a
quarter less time (bench/README.md, "Refinement"). Each replaces nodes by fewer or cheaper ones that
compute the same float32 values:

- ``Pow(x, 1)`` is ``x`` and ``Pow(x, 2)`` is ``Mul(x, x)`` (the backward of the RMS norm's square): ONNX
  Runtime's Pow costs several times a Mul per element. ``x^3`` (of a (rows, T, 1) tensor) stays a Pow:
  written as two Muls it gives other bytes.
- A linear layer traced through 2-D (``Reshape`` to (N, K), ``MatMul`` with a (K, M) matrix, ``Reshape``
  back) runs on the N-D tensor: ONNX Runtime folds the leading dims of an N-D left operand into the
  same one matrix product. Likewise an attention product traced through 3-D runs on the 4-D tensors.
- The backward of selecting layer l of a stacked adapter tensor, summed over the layers (an ``Add`` tree
  of ``Where(one_hot_l, Expand(g_l), 0)``), is a ``Concat`` of the g_l (see ``layer_scatters``).
- ``Reshape``/``Expand`` to the input's own shape, ``Reshape`` of a ``Reshape``, ``Identity`` and unread
  nodes are dropped.

Shapes come from the exporter's ``value_info`` (symbolic dims such as ``rows`` or ``src_len*rows``): a
rewrite that depends on a shape is made only where the dims it compares are known and equal as
written. The exporter (``export_refine``) gates the simplified graph on PyTorch as it did the traced
one, and the tests check the outputs equal the unsimplified graph's byte for byte.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

Shape = list  # of int | str (a symbolic dim)


class _Graph:
    """The node list of a graph with what the rewrites look up: producers, consumers, constants, shapes."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.outputs = {o.name for o in self.graph.output}
        self.consts: dict[str, np.ndarray] = {}
        for t in self.graph.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                self.consts[t.name] = numpy_helper.to_array(t)
        for node in self.graph.node:
            if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.shapes: dict[str, Shape] = {}
        values = [*self.graph.input, *self.graph.output, *self.graph.value_info]
        for v in values:
            if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
                dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in v.type.tensor_type.shape.dim]
                if all(d != "" and d != 0 for d in dims) or not dims:
                    self.shapes[v.name] = dims
        for t in self.graph.initializer:
            self.shapes[t.name] = list(t.dims)

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {o: n for n in self.graph.node for o in n.output}

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        out: dict[str, list[onnx.NodeProto]] = {}
        for n in self.graph.node:
            for i in n.input:
                out.setdefault(i, []).append(n)
        return out

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name)

    def set_shape(self, name: str, dims: Shape) -> None:
        """Record a value's new shape, in value_info too (ONNX Runtime checks it against what it infers)."""
        for v in self.graph.value_info:
            if v.name == name:
                elem = v.type.tensor_type.elem_type
                v.CopyFrom(onnx.helper.make_tensor_value_info(name, elem, dims))
        self.shapes[name] = list(dims)

    def add_const(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        self.consts[name] = value
        self.shapes[name] = list(value.shape)
        return name

    def rename_uses(self, old: str, new: str) -> None:
        for n in self.graph.node:
            for i, name in enumerate(n.input):
                if name == old:
                    n.input[i] = new

    def remove(self, nodes: list[onnx.NodeProto]) -> None:
        drop = {id(n) for n in nodes}  # ``nodes`` holds them: no other node can take their ids
        kept = [n for n in self.graph.node if id(n) not in drop]
        del self.graph.node[:]
        self.graph.node.extend(kept)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


def _alias(g: _Graph, node: onnx.NodeProto) -> bool:
    """Drop a node whose output equals its first input; False where its output is a graph output."""
    if node.output[0] in g.outputs:
        return False
    g.rename_uses(node.output[0], node.input[0])
    return True


def _exponent(g: _Graph, node: onnx.NodeProto) -> float | None:
    """A Pow's exponent where it is one constant value that leaves the base's shape as it is."""
    value = g.consts.get(node.input[1])
    if value is None or value.size != 1:
        return None
    base = g.shape(node.input[0])
    if value.ndim > 0 and (base is None or value.ndim > len(base)):
        return None  # a (1, 1, ...) exponent of higher rank would broadcast the base
    return float(value.reshape(()))


def pow_small_exponents(g: _Graph) -> int:
    dropped, done = [], 0
    for node in g.graph.node:
        if node.op_type != "Pow" or node.domain not in ("", "ai.onnx"):
            continue
        exponent = _exponent(g, node)
        if exponent == 1.0 and _alias(g, node):
            dropped.append(node)
            done += 1
        elif exponent == 2.0:
            node.op_type = "Mul"
            node.input[1] = node.input[0]
            done += 1
    g.remove(dropped)
    return done


def noop_reshapes(g: _Graph) -> int:
    dropped = []
    for node in g.graph.node:
        if node.op_type not in ("Reshape", "Expand"):
            continue
        before, after = g.shape(node.input[0]), g.shape(node.output[0])
        if before is not None and before == after and _alias(g, node):
            dropped.append(node)
    g.remove(dropped)
    return len(dropped)


def _reshape_target_is_literal(g: _Graph, node: onnx.NodeProto) -> bool:
    """True when the target shape does not depend on the input's shape: no 0 that copies an input dim."""
    if _attr(node, "allowzero", 0) == 1:
        return True
    target = g.consts.get(node.input[1])
    return target is not None and not (target == 0).any()


def reshape_chains(g: _Graph) -> int:
    producers, done = g.producers(), 0
    for node in g.graph.node:
        if node.op_type != "Reshape":
            continue
        inner = producers.get(node.input[0])
        if inner is None or inner.op_type != "Reshape" or not _reshape_target_is_literal(g, node):
            continue
        node.input[0] = inner.input[0]
        done += 1
    return done


def linear_layers(g: _Graph) -> int:
    """A linear layer traced through 2-D: x -Reshape-> (N, K) -MatMul (K, M)-> (N, M) -Reshape-> y. Where x
    is (*L, K), the MatMul reads x itself, and writes y where y is (*L, M); where x is (*L, ..) and y is
    (*L, M) (heads merged on the way in), the first Reshape keeps L, and the MatMul writes y."""
    producers, consumers = g.producers(), g.consumers()
    dropped, done = [], 0
    for mm in g.graph.node:
        if mm.op_type != "MatMul" or mm.output[0] in g.outputs:
            continue
        flat = producers.get(mm.input[0])
        users = consumers.get(mm.output[0], [])
        if flat is None or flat.op_type != "Reshape" or len(users) != 1 or users[0].op_type != "Reshape":
            continue
        unflat = users[0]
        x, w = g.shape(flat.input[0]), g.shape(mm.input[1])
        flat_shape, y = g.shape(flat.output[0]), g.shape(unflat.output[0])
        if None in (x, w, flat_shape, y) or len(w) != 2 or len(flat_shape) != 2 or flat_shape[1] != w[0]:
            continue
        k, m = w
        lead = y[:-1]
        if len(x) >= 3 and x[-1] == k:
            if y == [*x[:-1], m]:
                mm.input[0] = flat.input[0]
                mm.output[0] = unflat.output[0]
                dropped.append(unflat)
            elif _reshape_target_is_literal(g, unflat):
                mm.input[0] = flat.input[0]
                g.set_shape(mm.output[0], [*x[:-1], m])
            else:
                continue
        elif (
            isinstance(k, int)
            and y[-1] == m
            and len(lead) >= 2
            and x[: len(lead)] == lead
            and len(x) > len(lead)
            and len(consumers[flat.output[0]]) == 1
            and flat.output[0] not in g.outputs
        ):
            # 0 copies the input's dim: the target keeps L and merges the rest into K
            flat.input[1] = g.add_const(f"{flat.output[0]}.keep_lead", np.array([0] * len(lead) + [k], np.int64))
            for a in flat.attribute:
                if a.name == "allowzero":
                    a.i = 0
            g.set_shape(flat.output[0], [*lead, k])
            mm.output[0] = unflat.output[0]
            dropped.append(unflat)
        else:
            continue
        done += 1
    g.remove(dropped)
    return done


def batched_matmuls(g: _Graph) -> int:
    """(*L, M, K) and (*L, K, N) -Reshape-> (P, M, K) and (P, K, N) -MatMul-> (P, M, N) -Reshape-> (*L, M, N),
    with L two or more dims written alike on all sides, becomes one MatMul over the batch dims L."""
    producers, consumers = g.producers(), g.consumers()
    dropped = []
    for mm in g.graph.node:
        if mm.op_type != "MatMul" or mm.output[0] in g.outputs:
            continue
        flats = [producers.get(i) for i in mm.input]
        users = consumers.get(mm.output[0], [])
        if any(f is None or f.op_type != "Reshape" for f in flats):
            continue
        if len(users) != 1 or users[0].op_type != "Reshape":
            continue
        unflat = users[0]
        a, b = g.shape(flats[0].input[0]), g.shape(flats[1].input[0])
        a3, b3, c3 = g.shape(mm.input[0]), g.shape(mm.input[1]), g.shape(mm.output[0])
        c = g.shape(unflat.output[0])
        if None in (a, b, a3, b3, c3, c) or len(a) < 4 or not (len(a) == len(b) == len(c)):
            continue
        if len(a3) != 3 or len(b3) != 3 or len(c3) != 3:
            continue
        batch = a[:-2]
        if b[:-2] != batch or c[:-2] != batch:
            continue
        if a3[1:] != a[-2:] or b3[1:] != b[-2:] or c3[1:] != c[-2:] or not (a3[0] == b3[0] == c3[0]):
            continue
        mm.input[0], mm.input[1] = flats[0].input[0], flats[1].input[0]
        mm.output[0] = unflat.output[0]
        dropped.append(unflat)
    g.remove(dropped)
    return len(dropped)


def _is_zeros(g: _Graph, name: str, producers: dict) -> bool:
    """A constant 0, or an Expand of one."""
    value = g.consts.get(name)
    if value is None:
        node = producers.get(name)
        if node is None or node.op_type != "Expand":
            return False
        value = g.consts.get(node.input[0])
    return value is not None and value.size > 0 and not value.any()


def _layer_leaf(g: _Graph, where: onnx.NodeProto, producers: dict) -> tuple[int, int, str] | None:
    """``Where(one_hot, Expand(u), 0)`` that places u, (.., 1, ..) at ``axis``, at one ``index`` of that
    axis: (axis, index, u), or None."""
    out = g.shape(where.output[0])
    hot = g.consts.get(where.input[0])
    spread = producers.get(where.input[1])
    if out is None or hot is None or spread is None or spread.op_type != "Expand":
        return None
    if hot.dtype != np.bool_ or hot.ndim != len(out) or hot.sum() != 1:
        return None
    axes = [i for i, n in enumerate(hot.shape) if n != 1]
    if len(axes) != 1 or hot.shape[axes[0]] != out[axes[0]] or not _is_zeros(g, where.input[2], producers):
        return None
    axis = axes[0]
    u = spread.input[0]
    if g.shape(u) != [*out[:axis], 1, *out[axis + 1 :]] or g.shape(spread.output[0]) != out:
        return None
    return axis, int(np.flatnonzero(hot.reshape(-1))[0]), u


def layer_scatters(g: _Graph) -> int:
    """The backward of selecting one layer of a stacked tensor, summed over the layers: a tree of Adds of
    ``Where(one_hot_l, Expand(g_l), 0)``, one per layer l, becomes ``Concat(g_0, .., g_{L-1})`` on the
    layer axis. Each element of the sum holds one g_l and zeros, and ``v + 0 == v`` except that -0 + 0
    is +0: the Concat keeps a gradient's -0 where the sum gave +0, which no output shows (Adam's
    ``beta1 * m + (1 - beta1) * g`` is the same bytes for g = -0 and +0 from the zero moments up)."""
    producers, consumers = g.producers(), g.consumers()
    done, replaced = 0, {}
    for root in reversed(g.graph.node):
        if root.op_type != "Add" or id(root) in replaced:
            continue
        leaves, inner, stack = [], [], list(root.input)
        while stack:
            node = producers.get(stack.pop())
            if node is None or len(consumers.get(node.output[0], [])) != 1 or node.output[0] in g.outputs:
                leaves = None
                break
            if node.op_type == "Add":
                inner.append(node)
                stack.extend(node.input)
            elif node.op_type == "Where" and (leaf := _layer_leaf(g, node, producers)) is not None:
                leaves.append(leaf)
            else:
                leaves = None
                break
        if not leaves or len({a for a, _, _ in leaves}) != 1:
            continue
        axis = leaves[0][0]
        out = g.shape(root.output[0])
        if out is None or sorted(i for _, i, _ in leaves) != list(range(len(leaves))) or out[axis] != len(leaves):
            continue
        parts = [u for _, _, u in sorted(leaves, key=lambda leaf: leaf[1])]
        root.op_type = "Concat"
        del root.input[:]
        root.input.extend(parts)
        root.attribute.append(onnx.helper.make_attribute("axis", axis))
        for node in inner:
            replaced[id(node)] = node  # held, so that no other node takes its id
        done += 1
    return done


def identities(g: _Graph) -> int:
    dropped = [n for n in g.graph.node if n.op_type == "Identity" and _alias(g, n)]
    g.remove(dropped)
    return len(dropped)


def dead_nodes(g: _Graph) -> int:
    removed = 0
    while True:
        used = {i for n in g.graph.node for i in n.input} | g.outputs
        dead = [n for n in g.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        g.remove(dead)
        removed += len(dead)
    used = {i for n in g.graph.node for i in n.input}
    kept = [t for t in g.graph.initializer if t.name in used]
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept)
    names = {o for n in g.graph.node for o in n.output}
    info = [v for v in g.graph.value_info if v.name in names]
    del g.graph.value_info[:]
    g.graph.value_info.extend(info)
    return removed


MAX_ROUNDS = 8
PASSES = {
    "pow": pow_small_exponents,
    "identity": identities,
    "linear": linear_layers,
    "batched": batched_matmuls,
    "layer_scatter": layer_scatters,
    "noop_reshape": noop_reshapes,
    "reshape_chain": reshape_chains,
    "dead": dead_nodes,
}


def simplify(model: onnx.ModelProto, passes: tuple[str, ...] = tuple(PASSES)) -> dict[str, int]:
    """Rewrite ``model`` in place, the passes in turn until none applies (one rewrite can open another:
    a Reshape removed leaves a linear layer for the next round); returns how many rewrites each made."""
    g = _Graph(model)
    total = dict.fromkeys(passes, 0)
    for _ in range(MAX_ROUNDS):
        done = {name: PASSES[name](g) for name in passes}
        total = {name: total[name] + done[name] for name in passes}
        if not any(done.values()):
            break
    return total


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in model.graph.node)
