"""Throughput of ``reference.SimpleKimiK2`` against transformers' ``DeepseekV3ForCausalLM``, same weights, CPU.

Run: ``python tests/benchmarks/bench_model.py`` (or ``nox -s bench``). Both models are measured in
this one run, alternating repeat by repeat so that machine noise hits both alike; each figure is the
median over the repeats after warm-up. By default torch uses one thread and the clock is the
process's CPU time, which other processes on a shared machine barely disturb (all its threads count:
transformers' backward does part of its work off the calling thread, which a per-thread clock would
miss); ``--threads N`` uses N threads and wall-clock time instead. Printed: forward and
forward+backward tokens per second of each, their ratio (reference / transformers; the target is at
least 1.0), and how many routed experts the MoE layers actually ran against how many exist, for a
batch and for one decoded token.
Nothing here asserts a time; the numbers are for reading.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

import reference.moe
from reference import Experts, SimpleKimiK2, count_parameters

# A few million parameters: MLA with both latents, one dense layer then three MoE layers of 16
# experts in 4 groups (top-2 groups, 4 experts per token), one shared expert, YaRN on.
HF_CONFIG = dict(
    vocab_size=4096,
    hidden_size=256,
    intermediate_size=512,
    moe_intermediate_size=128,
    num_hidden_layers=4,
    first_k_dense_replace=1,
    num_attention_heads=8,
    num_key_value_heads=8,
    q_lora_rank=96,
    kv_lora_rank=64,
    qk_nope_head_dim=32,
    qk_rope_head_dim=16,
    v_head_dim=32,
    n_routed_experts=16,
    n_shared_experts=1,
    num_experts_per_tok=4,
    n_group=4,
    topk_group=2,
    routed_scaling_factor=2.5,
    max_position_embeddings=4096,
    rope_parameters=dict(
        rope_type="yarn",
        rope_theta=10000.0,
        factor=4.0,
        original_max_position_embeddings=1024,
        beta_fast=32.0,
        beta_slow=1.0,
        mscale=1.0,
        mscale_all_dim=1.0,
    ),
)


def build_pair() -> tuple[SimpleKimiK2, DeepseekV3ForCausalLM]:
    """A random transformers model (non-zero correction bias) and ours loaded from its save_pretrained."""
    torch.manual_seed(0)
    hf = DeepseekV3ForCausalLM(DeepseekV3Config(**HF_CONFIG))
    with torch.no_grad():
        for name, buffer in hf.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.normal_(0.0, 0.05)
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = SimpleKimiK2.from_pretrained(folder)
    return ours, hf


def use_threads(threads: int) -> tuple[Callable[[], float], str]:
    """Set torch's thread count; return the clock to time by and its name.

    One thread: the process's CPU time, which other processes on a shared machine barely disturb.
    More: wall-clock time, since CPU time would add the threads up.
    """
    torch.set_num_threads(threads)
    return (time.process_time, "process CPU time") if threads == 1 else (time.perf_counter, "wall")


def median_seconds(
    runs: dict[str, Callable[[], None]], warmup: int, repeats: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Median time of each callable by ``clock``, the callables interleaved within every repeat."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def forward_runs(ours: SimpleKimiK2, hf: DeepseekV3ForCausalLM, ids: torch.Tensor) -> dict[str, Callable[[], None]]:
    """Inference forward passes (eval mode, no autograd) of both models."""

    def run_ours() -> None:
        with torch.no_grad():
            ours(ids)

    def run_hf() -> None:
        with torch.no_grad():
            hf(ids, use_cache=False)

    return {"reference": run_ours, "transformers": run_hf}


def train_runs(ours: SimpleKimiK2, hf: DeepseekV3ForCausalLM, ids: torch.Tensor) -> dict[str, Callable[[], None]]:
    """Forward, next-token cross-entropy and backward of both models (gradients cleared each time)."""
    targets = ids[:, 1:].reshape(-1)

    def step(model: torch.nn.Module, logits_of: Callable[[torch.Tensor], torch.Tensor]) -> None:
        model.zero_grad(set_to_none=True)
        logits = logits_of(ids)[:, :-1]  # (B, T-1, vocab)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets).backward()

    return {
        "reference": lambda: step(ours, ours),
        "transformers": lambda: step(hf, lambda x: hf(x, use_cache=False).logits),
    }


def experts_run(model: SimpleKimiK2, ids: torch.Tensor) -> tuple[int, int]:
    """(routed experts whose weights were multiplied, routed experts in all MoE layers) for one forward.

    Counted at the source: every ``F.linear`` call whose weight is a slice of an ``Experts``
    parameter is one projection of one expert; each expert run makes three.
    """
    expert_params = {id(p) for m in model.modules() if isinstance(m, Experts) for p in m.parameters()}
    total = sum(m.gate_proj.shape[0] for m in model.modules() if isinstance(m, Experts))
    calls = 0
    linear = reference.moe.F.linear

    def counting_linear(x: torch.Tensor, weight: torch.Tensor, *args: object) -> torch.Tensor:
        nonlocal calls
        calls += id(weight._base) in expert_params if weight._base is not None else 0
        return linear(x, weight, *args)

    reference.moe.F.linear = counting_linear
    try:
        with torch.no_grad():
            model(ids)
    finally:
        reference.moe.F.linear = linear
    return calls // 3, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; above 1, time by wall clock")
    args = parser.parse_args()
    clock, clock_name = use_threads(args.threads)

    ours, hf = build_pair()
    n_params = count_parameters(ours.config)
    assert n_params == sum(p.numel() for p in hf.parameters()), "the two models differ in size"
    ids = torch.randint(0, ours.config.vocab_size, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    tokens = ids.numel()
    print(f"bench_model: {n_params:,} parameters, batch {args.batch} x {args.seq} tokens, torch {torch.__version__}, "
          f"{args.threads} thread(s), {clock_name}, median of {args.repeats} after {args.warmup} warm-up")  # fmt: skip

    with torch.no_grad():
        diff = (ours.eval()(ids) - hf.eval()(ids, use_cache=False).logits).abs().max().item()
    print(f"  same weights: max abs logit difference {diff:.2e}")

    ours.eval(), hf.eval()
    fwd = median_seconds(forward_runs(ours, hf, ids), args.warmup, args.repeats, clock)
    ours.train(), hf.train()
    bwd = median_seconds(train_runs(ours, hf, ids), args.warmup, args.repeats, clock)
    ours.eval(), hf.eval()

    for label, seconds in (("forward", fwd), ("forward+backward", bwd)):
        ref_tps, hf_tps = tokens / seconds["reference"], tokens / seconds["transformers"]
        print(f"  {label:<17} reference {ref_tps:>9,.0f} tok/s   transformers {hf_tps:>9,.0f} tok/s   "
              f"ratio {ref_tps / hf_tps:.2f}")  # fmt: skip

    cfg = ours.config
    moe_layers = sum(cfg.is_moe_layer(i) for i in range(cfg.num_layers))
    print(f"  MoE dispatch: {moe_layers} MoE layers x {cfg.n_routed_experts} routed experts, "
          f"each token uses {cfg.num_experts_per_tok} per layer")  # fmt: skip
    for label, x in ((f"the batch of {tokens} tokens", ids), ("one decoded token", ids[:1, :1])):
        ran, total = experts_run(ours, x)
        print(f"    {label}: ran {ran} of {total} experts")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
