"""Greedy decoding speed of ``reference.SimpleKimiK2`` against transformers' ``DeepseekV3ForCausalLM``, same weights.

Run: ``python tests/benchmarks/bench_decode.py`` (or ``nox -s bench``). Both models are bench_model's
(``bench_model.HF_CONFIG``: MLA, one dense and three MoE layers), loaded with the same weights. For
each context length, each model prefills a random prompt of that many tokens into its own cache
(the reference's :class:`~reference.KVCache`, transformers' ``DynamicCache``; untimed, in chunks so
that the prefill's score matrices stay small), then takes ``--steps`` greedy steps of one token each,
the argmax of the last logits fed back. A run is timed from its first step to its last; ms/token is
that time over the steps. Every run starts from its own copy of the prefilled cache. The two models
alternate run by run (``--repeats`` runs each, after one warm-up run) so that machine noise hits both
alike, and each figure is the median. By default torch uses one thread and the clock is the
process's CPU time (``--threads N``: N threads, wall clock).

Both loops call each model's plain forward with its cache (not ``generate``, whose logits
processors and stopping criteria would be timed too). transformers caches MLA's latent and expands
it through ``kv_b_proj`` into per-head keys and values at every step (checked in 5.24); the reference
decodes on the absorbed path and never expands. Printed per context length: ms/token of each, the
ratio transformers / reference (how many times faster the reference decodes; the target is at least
1.5), and whether the two generated the same tokens. Nothing here asserts a time; the numbers are for
reading.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import statistics
from collections.abc import Callable

import torch
from bench_model import build_pair, use_threads
from transformers import DeepseekV3ForCausalLM, DynamicCache

from reference import KVCache, SimpleKimiK2

PREFILL_CHUNK = 512  # prompt tokens per prefill call


class ReferenceDecoder:
    """The reference model with its :class:`~reference.KVCache`."""

    name = "reference"

    def __init__(self, model: SimpleKimiK2) -> None:
        self.model = model

    def prefill(self, prompt: torch.Tensor) -> torch.Tensor:
        """Cache ``prompt`` ``(1, S)``; return the logits of its last token ``(1, vocab)``."""
        self.cache = KVCache(self.model.config.num_layers)
        for chunk in prompt.split(PREFILL_CHUNK, dim=1):
            logits = self.model(chunk, self.cache)
        return logits[:, -1]

    def step(self, token: torch.Tensor) -> torch.Tensor:
        return self.model(token, self.cache)[:, -1]


class TransformersDecoder:
    """transformers' model with its ``DynamicCache``."""

    name = "transformers"

    def __init__(self, model: DeepseekV3ForCausalLM) -> None:
        self.model = model
        # transformers 5.24 renamed past_key_values to cache (the old name warns at every call).
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids, use_cache=True, **{self.cache_arg: self.cache}).logits[:, -1]

    def prefill(self, prompt: torch.Tensor) -> torch.Tensor:
        self.cache = DynamicCache(config=self.model.config)
        for chunk in prompt.split(PREFILL_CHUNK, dim=1):
            logits = self.forward(chunk)
        return logits

    def step(self, token: torch.Tensor) -> torch.Tensor:
        return self.forward(token)


Decoder = ReferenceDecoder | TransformersDecoder


@torch.no_grad()
def timed_steps(
    decoder: Decoder, prefilled: object, first: torch.Tensor, steps: int, clock: Callable[[], float]
) -> tuple[float, list[int]]:
    """``steps`` greedy steps from token ``first`` ``(1, 1)`` on a copy of ``prefilled``: (seconds, tokens)."""
    decoder.cache = copy.deepcopy(prefilled)
    token, tokens = first, []
    start = clock()
    for _ in range(steps):
        token = decoder.step(token).argmax(dim=-1, keepdim=True)  # (1, 1)
        tokens.append(int(token))
    return clock() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[256, 1024, 3072, 8192])
    parser.add_argument("--steps", type=int, default=16, help="greedy steps timed per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; above 1, time by wall clock")
    args = parser.parse_args()
    clock, clock_name = use_threads(args.threads)

    ours, hf = build_pair()
    decoders = (ReferenceDecoder(ours.eval()), TransformersDecoder(hf.eval()))
    print(f"bench_decode: bench_model's config, batch 1, {args.steps} greedy steps after the prefill, "
          f"torch {torch.__version__}, {args.threads} thread(s), {clock_name}, median of {args.repeats} "
          f"interleaved runs after 1 warm-up")  # fmt: skip
    print(f"  {'context':>8} {'reference ms/token':>19} {'transformers ms/token':>22} {'ratio':>6}  same tokens")
    for context in args.contexts:
        prompt = torch.randint(0, ours.config.vocab_size, (1, context), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            first = {d.name: d.prefill(prompt).argmax(dim=-1, keepdim=True) for d in decoders}  # (1, 1)
        prefilled = {d.name: d.cache for d in decoders}
        times: dict[str, list[float]] = {d.name: [] for d in decoders}
        tokens: dict[str, list[int]] = {}
        for repeat in range(args.repeats + 1):
            for decoder in decoders:
                name = decoder.name
                seconds, tokens[name] = timed_steps(decoder, prefilled[name], first[name], args.steps, clock)
                if repeat:  # the first run of each is the warm-up
                    times[decoder.name].append(seconds)
        ms = {name: 1000 * statistics.median(ts) / args.steps for name, ts in times.items()}
        same = "yes" if tokens["reference"] == tokens["transformers"] else "NO"
        print(f"  {context:>8,} {ms['reference']:>19.2f} {ms['transformers']:>22.2f} "
              f"{ms['transformers'] / ms['reference']:>6.2f}  {same}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
