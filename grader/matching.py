r"""The learner's model beside the reference lesson architecture, on the same weights (check 4.11).

In the sandbox, the probe pairs the reference's weights (``grader.draws.reference_weights``) with the
learner's parameters, by name or else by structure, and sends back the learner's logits and what each of
its decoder layers and norms received and returned. Here, in the grader's own process, ``reference`` runs
on the same weights and ``compare`` says whether the logits agree and, when they do not, where they part.

A correct model may follow another common convention than the reference's. Each one below computes the
same function as the reference with its weights permuted, so the grader permutes the weights *it gives the
reference*, never the learner's, and names the convention that matched:

- RoPE's pairs: adjacent channels ``(x[2i], x[2i+1])``, as the reference and DeepSeek's checkpoints, or the
  two halves ``(x[i], x[i + d/2])`` (``rotate_half``, Hugging Face's Llama). Rotating halves with weights
  :math:`W` is rotating adjacent pairs with the rows of ``q_proj`` and ``k_proj`` interleaved within each
  head: scores are dot products, unchanged when q and k permute their channels alike.
- Query heads to KV heads: contiguous groups (head ``h`` reads KV head ``h // group``, ``repeat_interleave``)
  or strided (``h % num_kv_heads``, ``k.repeat(1, group, 1, 1)``): the same model with its query heads
  (rows of ``q_proj``, columns of ``o_proj``) in another order, which the sum over heads does not see.
- The RoPE base: the learner's ``rope_theta`` when its Config (or a module) declares one; otherwise the
  common bases (``THETAS``) are tried in turn, and the feedback says which one the model behaves as.
- When the weights were paired by structure, K and V (and the MLP's gate and up), told apart only by the
  order of their calls, are also tried the other way round.

The norms' epsilon is the learner's when declared, else the reference's 1e-6; the weights are of unit
scale, so any usual epsilon moves the logits far less than the tolerance.

Where the logits differ, each stage of the learner's model is compared with the reference's on the
*learner's own input to that stage*, in order: the embedding, each layer's first norm, attention, second
norm and MLP, the final norm and the head. The first stage that differs is named. At position 0, causal
attention can only read token 0 itself, so the output there does not depend on queries, keys, RoPE, the
scale or the mask: attention that is right at position 0 and wrong later has wrong *scores*; wrong at
position 0 too, a wrong *output* (values, output projection, grouping). Known slips (no 1/sqrt(d_k), no
RoPE, no mask, another activation) are named when they reproduce the learner's numbers exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

import reference
from reference import causal_mask, precompute_freqs_cis

from .draws import reference_config, reference_weights
from .observations import Observed

TOLERANCE_TEXT = "1e-4"  # largest logit difference accepted, relative to the logits' size (at least 1)
TOLERANCE = float(TOLERANCE_TEXT)
THETAS = (10000.0, 50000.0, 500000.0, 1000000.0)  # DeepSeek-V3 (the reference), Kimi-K2, Llama 3, Qwen 2
DEFAULT_EPS = 1e-6
# Weights a learner may hold in one matrix, stacked along the rows in this order (sent to the probe).
FUSIONS = (("q_proj", "k_proj", "v_proj"), ("k_proj", "v_proj"), ("gate_proj", "up_proj"))
# Where a learner's Config (or module) may keep the two free hyperparameters (sent to the probe).
HYPERPARAMETERS = {
    "rope_theta": ("rope_theta", "rope_base", "rotary_base", "rotary_emb_base", "theta", "base"),
    "rms_norm_eps": ("rms_norm_eps", "norm_eps", "rms_eps", "layer_norm_eps", "norm_epsilon", "eps"),
}
SWAPS = (("k_proj", "v_proj"), ("gate_proj", "up_proj"))  # told apart only by call order when by structure


@dataclass(frozen=True)
class Convention:
    """One way of writing the lesson architecture: RoPE's pairs, the head grouping, the base, any swaps."""

    pairs: str = "adjacent"  # or "halves"
    grouping: str = "contiguous"  # or "strided"
    theta: float = THETAS[0]
    swapped: tuple[str, ...] = ()  # roles of SWAPS whose two weights change places ("k_proj", "gate_proj")

    def describe(self) -> str:
        """``RoPE on adjacent pairs (as the reference), query heads in contiguous groups``."""
        pairs = (
            "RoPE on adjacent channel pairs (as the reference)"
            if self.pairs == "adjacent"
            else "RoPE on the two halves of each head (rotate_half)"
        )
        grouping = (
            "query heads sharing a KV head in contiguous groups (as the reference)"
            if self.grouping == "contiguous"
            else "query heads assigned to KV heads in strided order (head h reads KV head h % num_kv_heads)"
        )
        return f"{pairs}, {grouping}"


@dataclass
class Comparison:
    """The outcome: whether the logits agree, under which convention, and otherwise where they part."""

    matched: bool
    convention: Convention
    difference: float  # the largest logit difference, under ``convention``
    allowed: float  # the largest accepted
    stage: str = ""  # where the learner's model first differs ("" when matched, or when no stage shows it)
    detail: str = ""  # a sentence on that stage: what was found, what to do
    slip: bool = False  # a known slip reproduces the learner's numbers exactly
    assumed: list[str] = field(default_factory=list)  # what was used for the hyperparameters the code does not declare


def tensor(observed: Observed | None) -> torch.Tensor | None:
    """An observed tensor as float64, or None when absent or holding NaN/inf."""
    if observed is None or observed.values is None or observed.nonfinite:
        return None
    return observed.tensor()


def allowed(expected: torch.Tensor) -> float:
    """The largest difference accepted from ``expected``: TOLERANCE times its size, at least TOLERANCE."""
    return TOLERANCE * max(1.0, float(expected.abs().max())) if expected.numel() else TOLERANCE


def close(found: torch.Tensor | None, expected: torch.Tensor) -> bool:
    """``found`` has ``expected``'s shape and agrees with it within ``allowed``."""
    if found is None or tuple(found.shape) != tuple(expected.shape):
        return False
    return float((found - expected.double()).abs().max()) <= allowed(expected) if found.numel() else True


def permuted(weights: dict[str, torch.Tensor], fields: dict[str, int], c: Convention) -> dict[str, torch.Tensor]:
    """The weights to give the reference so that it computes what the learner computes, under convention c."""
    heads, kv_heads = fields["num_heads"], fields["num_kv_heads"]
    d, group = fields["hidden_size"] // heads, heads // kv_heads
    # Reference row 2i of a head holds the learner's row i, row 2i + 1 its row i + d/2.
    within = torch.arange(d) if c.pairs == "adjacent" else torch.tensor([i // 2 + (i % 2) * (d // 2) for i in range(d)])
    # Reference head h = g * group + m (KV head g) is the learner's head m * num_kv_heads + g.
    order = (
        torch.arange(heads)
        if c.grouping == "contiguous"
        else torch.tensor([(h % group) * kv_heads + h // group for h in range(heads)])
    )
    q_rows = (order[:, None] * d + within[None, :]).reshape(-1)
    k_rows = (torch.arange(kv_heads)[:, None] * d + within[None, :]).reshape(-1)
    o_cols = (order[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
    out = dict(weights)
    for name in weights:
        prefix, _, role = name.removesuffix(".weight").rpartition(".")
        swap = next((pair for pair in SWAPS if role in pair and pair[0] in c.swapped), None)
        source = weights[name]
        if swap is not None:
            other = swap[1] if role == swap[0] else swap[0]
            source = weights[f"{prefix}.{other}.weight"]
        if role == "q_proj":
            source = source[q_rows]
        elif role == "k_proj":
            source = source[k_rows]
        elif role == "o_proj":
            source = source[:, o_cols]
        out[name] = source
    return out


class Reference:
    """The reference lesson model on the drawn weights, for one student's comparison."""

    def __init__(self, fields: dict[str, int], seed: int, eps: float) -> None:
        self.fields, self.eps = fields, eps
        self.weights = reference_weights(tuple(fields.items()), seed)
        self.model = reference.SimpleKimiK2(reference_config(fields).with_(rms_norm_eps=eps)).eval()
        self.loaded: Convention | None = None

    def use(self, c: Convention) -> None:
        """Load the weights as convention c needs them, and its RoPE base."""
        if c != self.loaded:
            self.model.load_state_dict(permuted(self.weights, self.fields, c))
            self.model.config = self.model.config.with_(rope_theta=c.theta)
            self.loaded = c

    def freqs(self, length: int, rope: bool = True) -> torch.Tensor:
        """RoPE's rotations for positions 0..length-1 under the loaded base (all 1 when ``rope`` is off)."""
        freqs = precompute_freqs_cis(self.model.config, length)
        return freqs if rope else torch.ones_like(freqs)

    @torch.no_grad()
    def logits(self, ids: list[list[int]]) -> torch.Tensor:
        return self.model(torch.tensor(ids))

    @torch.no_grad()
    def attention(self, layer: int, x: torch.Tensor, variant: str = "") -> torch.Tensor:
        """Layer ``layer``'s attention on x (B, T, H), or a known slip of it: no_scale, scale_d, no_rope, no_mask."""
        attn = self.model.layers[layer].self_attn
        length = x.shape[1]
        mask = None if variant == "no_mask" else causal_mask(length)
        saved = attn.scale
        attn.scale = {"no_scale": 1.0, "scale_d": 1.0 / attn.head_dim}.get(variant, saved)
        try:
            return attn(x.float(), self.freqs(length, rope=variant != "no_rope"), mask)
        finally:
            attn.scale = saved

    @torch.no_grad()
    def mlp(self, layer: int, x: torch.Tensor, variant: str = "") -> torch.Tensor:
        """Layer ``layer``'s SwiGLU on x, or with another activation (gelu, relu) in place of SiLU."""
        mlp = self.model.layers[layer].mlp
        x = x.float()
        act = {"gelu": F.gelu, "relu": F.relu}.get(variant, F.silu)
        return mlp.down_proj(act(mlp.gate_proj(x)) * mlp.up_proj(x))

    @torch.no_grad()
    def layer(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        return self.model.layers[layer](x.float(), self.freqs(length), causal_mask(length))


SCORE_SLIPS = {
    "no_scale": "they are the dot products of q and k without the 1/sqrt(d_k) scale: multiply the scores by "
    "1/sqrt(head_dim) before the softmax",
    "scale_d": "they are divided by d_k instead of sqrt(d_k): the scale is 1/sqrt(head_dim)",
    "no_rope": "q and k are not rotated by RoPE, so attention does not know where tokens are: rotate both by "
    "their positions before the scores",
    "no_mask": "no causal mask is applied: add -inf above the diagonal before the softmax (see 4.4)",
}
MLP_SLIPS = {
    "gelu": "it uses GELU where SwiGLU uses SiLU: down(silu(gate(x)) * up(x))",
    "relu": "it uses ReLU where SwiGLU uses SiLU: down(silu(gate(x)) * up(x))",
}


def conventions(thetas: tuple[float, ...], structure: bool) -> Iterator[Convention]:
    """Every convention worth trying, the likeliest first."""
    swaps = [(), *([(pair[0],) for pair in SWAPS] + [tuple(p[0] for p in SWAPS)] if structure else [])]
    for theta, grouping, pairs, swapped in itertools.product(
        thetas, ("contiguous", "strided"), ("adjacent", "halves"), swaps
    ):
        yield Convention(pairs, grouping, theta, swapped)


@dataclass
class Stages:
    """What the learner's layers received and returned, as tensors, when every layer could be observed
    as pre-norm (two norms, the first seeing the layer's input); None otherwise."""

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    norms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]  # in1, out1, in2, out2
    final: tuple[torch.Tensor, torch.Tensor] | None


def stages(observed: dict[str, Any], layers: int, hidden: int, length: int) -> tuple[Stages | None, str]:
    """The learner's per-layer tensors, or None and why the layers cannot be compared one stage at a time."""
    seen = observed["layers"] or []
    if len(seen) != layers:
        return None, f"the grader found {len(seen)} DecoderLayer module(s) called, for num_layers={layers}"
    inputs, outputs, norms = [], [], []
    shape = (1, length, hidden)
    for i, layer in enumerate(seen):
        x, y = tensor(layer["input"]), tensor(layer["output"])
        calls = [(tensor(c["input"]), tensor(c["output"])) for c in layer["norms"][:2]]
        found = [t for t in (x, y, *itertools.chain(*calls)) if t is not None and tuple(t.shape) == shape]
        if len(calls) < 2 or len(found) != 6:
            return None, f"layer {i} did not show two norm calls with hidden states of shape {shape}"
        if not close(calls[0][0], x):
            return None, f"layer {i}'s first norm does not receive the layer's input (post-norm? see 4.8)"
        inputs.append(x)
        outputs.append(y)
        norms.append((calls[0][0], calls[0][1], calls[1][0], calls[1][1]))
    final = observed["final_norm"]
    pair = (tensor(final["input"]), tensor(final["output"])) if final else None
    return Stages(inputs, outputs, norms, pair if pair and None not in pair else None), ""


def largest(found: torch.Tensor, expected: torch.Tensor) -> str:
    """``largest difference 0.31``."""
    return f"largest difference {float((found - expected.double()).abs().max()):.3g}"


def compare(observed: dict[str, Any], draws: Any) -> Comparison:
    """Compare the learner's observed model with the reference on the drawn weights (see the module doc)."""
    fields, ids = draws.reference["config"], draws.reference["ids"]
    hyper = observed["hyperparameters"]
    theta, eps = hyper["rope_theta"]["value"], hyper["rms_norm_eps"]["value"]
    assumed = []
    if eps is None:
        assumed.append(f"rms_norm_eps {DEFAULT_EPS:g} (the reference's)")
    thetas = (theta,) if theta is not None else THETAS
    ref = Reference(fields, draws.reference["seed"], eps if eps is not None else DEFAULT_EPS)
    structure = observed["mapping"]["method"] == "structure"
    candidates = list(conventions(thetas, structure))
    logits = tensor(observed["logits"])
    length = len(ids[0])
    expected_shape = (1, length, fields["vocab_size"])
    if logits is None or tuple(logits.shape) != expected_shape:
        ref.use(candidates[0])
        found = "NaN or inf" if logits is None else f"shape {tuple(logits.shape)}"
        return Comparison(
            False,
            candidates[0],
            float("inf"),
            TOLERANCE,
            "logits",
            f"the logits have {found}, expected finite logits of shape {expected_shape}",
            assumed=assumed,
        )
    seen, why = stages(observed, fields["num_layers"], fields["hidden_size"], length)
    chosen = choose(ref, candidates, seen, logits, ids)
    convention = chosen or candidates[0]
    ref.use(convention)
    expected = ref.logits(ids)
    difference = float((logits - expected.double()).abs().max())
    result = Comparison(close(logits, expected), convention, difference, allowed(expected), assumed=assumed)
    if theta is None:
        how = "your model behaves as that base" if result.matched else "the reference's; no common base matched"
        result.assumed.append(f"rope_theta {convention.theta:g} ({how})")
    if result.matched:
        return result
    if seen is None:
        result.detail = f"the grader cannot compare your layers one stage at a time ({why}), so it cannot say where"
        return result
    diagnose(result, ref, seen, logits, ids, candidates)
    return result


def choose(
    ref: Reference,
    candidates: list[Convention],
    seen: Stages | None,
    logits: torch.Tensor,
    ids: list[list[int]],
) -> Convention | None:
    """The convention the learner's model follows, judged on layer 0's attention and then its MLP (each on the
    learner's own input to it) when the layers can be observed, else on the whole logits; None when none fits."""
    if seen is None:
        for c in candidates:
            ref.use(c)
            if close(logits, ref.logits(ids)):
                return c
        return None
    _, out1, in2, out2 = seen.norms[0]
    attention, mlp = in2 - seen.inputs[0], seen.outputs[0] - in2
    for c in (c for c in candidates if "gate_proj" not in c.swapped):
        ref.use(c)
        if close(attention, ref.attention(0, out1)):
            break
    else:
        return None
    options = [c, replace(c, swapped=(*c.swapped, "gate_proj"))] if any(k.swapped for k in candidates) else [c]
    for option in options:
        ref.use(option)
        if close(mlp, ref.mlp(0, out2)):
            return option
    return c


def diagnose(
    result: Comparison,
    ref: Reference,
    seen: Stages,
    logits: torch.Tensor,
    ids: list[list[int]],
    candidates: list[Convention],
) -> None:
    """Name the first stage of the learner's model that differs from the reference's on the same input."""

    def found(stage: str, detail: str, slip: bool = False) -> None:
        result.stage, result.detail, result.slip = stage, detail, slip

    with torch.no_grad():
        embedding = ref.model.embed_tokens(torch.tensor(ids))
    if not close(seen.inputs[0], embedding):
        return found(
            "the embedding",
            f"your first decoder layer's input is not embed_tokens(input_ids) ({largest(seen.inputs[0], embedding)}): "
            "pass the embeddings to the first layer unchanged (no scaling, nothing added)",
        )
    for i in range(len(seen.inputs)):
        in1, out1, in2, out2 = seen.norms[i]
        layer = ref.model.layers[i]
        if i and not close(seen.inputs[i], seen.outputs[i - 1]):
            return found(f"between layers {i - 1} and {i}", f"layer {i}'s input is not layer {i - 1}'s output")
        with torch.no_grad():
            norm1 = layer.input_layernorm(in1.float())
        if not close(out1, norm1):
            return found(
                f"layer {i}'s first norm (input_layernorm)",
                "its output is not RMSNorm of the layer's input with input_layernorm's weight "
                f"({largest(out1, norm1)})",
            )
        attention = in2 - seen.inputs[i]
        expected = ref.attention(i, out1)
        if not close(attention, expected):
            return found(*attention_stage(ref, i, out1, attention, expected, candidates))
        with torch.no_grad():
            norm2 = layer.post_attention_layernorm(in2.float())
        if not close(out2, norm2):
            return found(
                f"layer {i}'s second norm (post_attention_layernorm)",
                f"its output is not RMSNorm of h = x + attention with post_attention_layernorm's weight "
                f"({largest(out2, norm2)})",
            )
        mlp = seen.outputs[i] - in2
        expected = ref.mlp(i, out2)
        if not close(mlp, expected):
            slip = next((text for name, text in MLP_SLIPS.items() if close(mlp, ref.mlp(i, out2, name))), None)
            if slip:
                return found(f"layer {i}'s MLP", slip, slip=True)
            return found(
                f"layer {i}'s MLP",
                f"on the output of your second norm it gives other numbers than down(silu(gate(x)) * up(x)) "
                f"({largest(mlp, expected)})",
            )
    if seen.final is None:
        return found("the final norm", "no norm module was called after the last layer: apply the final RMSNorm")
    final_in, final_out = seen.final
    if not close(final_in, seen.outputs[-1]):
        return found("the final norm", "its input is not the last layer's output")
    with torch.no_grad():
        norm = ref.model.norm(final_in.float())
        head = ref.model.lm_head(final_out.float())
    if not close(final_out, norm):
        return found("the final norm", f"its output is not RMSNorm with norm's weight ({largest(final_out, norm)})")
    if not close(logits, head):
        return found("the head", f"the logits are not lm_head(final norm's output) ({largest(logits, head)})")
    return found(
        "",
        "yet each stage gives the reference's numbers on your model's own input to it: something outside the "
        "modules the grader watches (decoder layers, norms) changes them",
    )


def attention_stage(
    ref: Reference,
    i: int,
    x: torch.Tensor,
    found: torch.Tensor,
    expected: torch.Tensor,
    candidates: list[Convention],
) -> tuple[str, str, bool]:
    """(stage, detail, slip) for layer i's attention, which differs on its input x under every convention."""
    loaded = ref.loaded
    try:
        for variant, text in SCORE_SLIPS.items():
            for c in candidates:
                if variant == "no_rope" and (c.pairs != "adjacent" or c.theta != candidates[0].theta):
                    continue  # without RoPE the pairs and the base do not matter
                ref.use(c)
                if close(found, ref.attention(i, x, variant)):
                    return f"layer {i}'s attention scores", text, True
        for c in candidates:
            ref.use(c)
            if close(found[:, :1], ref.attention(i, x)[:, :1]):
                return (
                    f"layer {i}'s attention scores",
                    "at position 0, which can only attend to token 0 itself, your attention output matches; "
                    f"from position 1 on it does not ({largest(found, expected)}): the scores (q, k, RoPE, the "
                    "scale or the mask) differ from the reference's",
                    False,
                )
        return (
            f"layer {i}'s attention output",
            "even at position 0, where attention can only read token 0 itself, your attention output differs "
            f"({largest(found[:, :1], expected[:, :1])}): the values, the output projection or the way query "
            "heads share KV heads differ from the reference's",
            False,
        )
    finally:
        if loaded is not None:
            ref.use(loaded)
