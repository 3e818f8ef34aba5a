"""RMSNorm's numbers and the decoder layer's structure: residual connections and pre-norm.

RMSNorm is compared with the formula ``x / sqrt(mean(x**2) + eps) * g`` on inputs with a non-zero mean (so
LayerNorm's mean subtraction shows), with ``g`` set to random values by the grader. The layer's structure
is observed from outside: with every parameter outside the norms zeroed, attention and MLP add nothing,
so a block with residuals returns (a rescaling of) its input; hooks on its norm modules show whether the
first norm sees the layer's input (pre-norm) and whether the output comes straight out of a norm (post-norm).
"""

from __future__ import annotations

import torch

from grader.evidence import Evidence
from grader.feedback import config_call, max_diff, shape
from grader.observations import Observed
from grader.scoring import check

EPS = 1e-6
ATOL, RTOL = 1e-4, 1e-3
SAME = 1e-5


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal within float32 rounding and any small epsilon."""
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same hidden states up to float32 rounding."""
    return a.shape == b.shape and max_diff(a, b) <= SAME * (1 + float(b.abs().max()))


def tensor(observed: Observed, what: str) -> torch.Tensor:
    """An observed tensor, or AssertionError if the child had NaN/inf in it."""
    assert observed.nonfinite == 0, f"{what} holds {observed.nonfinite} NaN or inf entries."
    return observed.tensor()


def rms_diagnosis(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> str:
    """Name the usual slip when the output matches it."""
    ms = x.pow(2).mean(-1, keepdim=True)
    centred = x - x.mean(-1, keepdim=True)
    candidates = {
        "It is still the starter stub x * scale: divide by the root mean square first.": x * w,
        "It subtracts the mean (that is LayerNorm): RMSNorm only divides by the root mean square, "
        "x / sqrt(mean(x**2) + eps) * g.": centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + EPS) * w,
        "It never multiplies by the learnable scale g.": x / torch.sqrt(ms + EPS),
        "It divides by mean(x**2) without the square root.": x / (ms + EPS) * w,
        "It divides by the root of the sum of squares, not of the mean.": x / torch.sqrt(x.pow(2).sum(-1, True)) * w,
        "It averages over the wrong dimension: the mean runs over the last (feature) dimension only.": x
        / torch.sqrt(x.pow(2).mean() + EPS)
        * w,
    }
    for text, candidate in candidates.items():
        if close(out, candidate):
            return " " + text
    return ""


@check(
    "4.6",
    "model.rmsnorm",
    6,
    "RMSNorm(dim) computes x / sqrt(mean(x**2) + eps) * g over the last dimension",
    "auto_examples/01_components.html",
)
def check_rmsnorm(evidence: Evidence) -> str:
    d = evidence.draws
    doing = f"RMSNorm({d.rms_dim}) on an input of shape {shape((len(d.rms_x), len(d.rms_x[0]), d.rms_dim))}"
    observed = evidence.observe("rmsnorm", "rmsnorm", doing)
    assert observed["scale"] is not None, (
        f"RMSNorm({d.rms_dim}) has no learnable scale of shape ({d.rms_dim},): its parameters are "
        f"{', '.join(p['name'] for p in observed['params']) or 'none'}. Give it nn.Parameter(torch.ones(dim))."
    )
    x = torch.tensor(d.rms_x, dtype=torch.float64)
    w = torch.tensor(d.rms_weight, dtype=torch.float64)
    out = tensor(observed["output"], f"The output of {doing}")
    assert tuple(out.shape) == tuple(x.shape), (
        f"{doing} returned shape {shape(out.shape)}; RMSNorm keeps the shape of its input, {shape(x.shape)}."
    )
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w
    assert close(out, expected), (
        f"{doing} (scale set to random values) differs from x / sqrt(mean(x**2) + eps) * g by up to "
        f"{max_diff(out, expected):.3g}.{rms_diagnosis(x, w, out)}"
    )
    return "model.rmsnorm: matches x / sqrt(mean(x**2) + eps) * g."


def layer_doing(evidence: Evidence) -> str:
    """``DecoderLayer(Config(...))`` on an input of its shape, for messages."""
    x = evidence.draws.layer_x
    dims = (1, len(x[0]), len(x[0][0]))
    return f"DecoderLayer({config_call(evidence.draws.layer_config)}) on hidden states of shape {shape(dims)}"


@check(
    "4.7",
    "model.residual",
    4,
    "DecoderLayer adds attention and MLP outputs to a residual stream (x + sublayer(...))",
    "auto_examples/07_skeleton.html",
)
def check_residual(evidence: Evidence) -> str:
    doing = layer_doing(evidence)
    observed = evidence.observe("layer", "layer", doing)
    x = torch.tensor(evidence.draws.layer_x, dtype=torch.float64)
    out = tensor(observed["output"], f"The output of {doing}")
    assert tuple(out.shape) == tuple(x.shape), (
        f"{doing} returned shape {shape(out.shape)}; a decoder layer keeps the shape of its input {shape(x.shape)}."
    )
    zeroed = tensor(observed["zeroed_output"], f"The output of {doing} with zeroed weights")
    carried = same(zeroed, x)
    post_norm = bool(observed["norm_calls"]) and not same(tensor(observed["norm_calls"][0]["input"], "A norm input"), x)
    if post_norm and observed["zeroed_first_norm_input"] is not None:
        carried = carried or same(tensor(observed["zeroed_first_norm_input"], "A norm input"), x)
    assert carried, (
        "With every weight outside the norms set to zero, attention and the MLP output zeros, so a layer with "
        f"residual connections carries its input through (x + 0). {doing} lost it (largest difference from the "
        f"input {max_diff(zeroed, x):.3g}): add each sublayer's output to its input, h = x + attn(norm1(x)), "
        "out = h + mlp(norm2(h))."
    )
    assert not same(out, x), (
        f"{doing} returned its input unchanged: the residual stream is there, but attention and the MLP add "
        "nothing. Replace the stubs with real sublayers."
    )
    if post_norm:
        return "model.residual: the residual connections are there (around post-norm sublayers; see 4.8)."
    return "model.residual: attention and MLP are added to the residual stream."


@check(
    "4.8",
    "model.prenorm",
    4,
    "DecoderLayer is pre-norm: each sublayer sees norm(x), the residual stream is never normalised",
    "auto_examples/07_skeleton.html",
)
def check_prenorm(evidence: Evidence) -> str:
    doing = layer_doing(evidence)
    observed = evidence.observe("layer", "layer", doing)
    calls = observed["norm_calls"]
    assert observed["n_norm_calls"] >= 2, (
        f"{doing} called {observed['n_norm_calls']} normalisation module(s) (modules whose class name contains "
        f"'Norm': {observed['norm_modules'] or 'none found'}); a pre-norm layer calls one before attention and "
        "one before the MLP: h = x + attn(norm1(x)), out = h + mlp(norm2(h))."
    )
    x = torch.tensor(evidence.draws.layer_x, dtype=torch.float64)
    first = tensor(calls[0]["input"], "The first norm's input")
    assert same(first, x), (
        f"In {doing}, the first norm ({calls[0]['module']}) did not receive the layer's input: the layer "
        "normalises after the sublayer (post-norm, norm(x + attn(x))). Pre-norm applies the norm first: "
        "x + attn(norm1(x))."
    )
    out = tensor(observed["output"], f"The output of {doing}")
    last = tensor(calls[-1]["output"], "The last norm's output")
    assert not (last.shape == out.shape and close(out, last)), (
        f"The output of {doing} is the output of its norm {calls[-1]['module']}: the residual stream is "
        "normalised (post-norm). In a pre-norm layer the output is h + mlp(norm2(h)), not normalised."
    )
    return "model.prenorm: each sublayer gets a normalised input and the residual stream is left alone."
