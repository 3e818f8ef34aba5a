"""The KV cache: what each attention layer keeps of the tokens it has already seen.

During generation every new token attends to all earlier ones. Recomputing their keys and
values at each step costs a full forward pass over the prefix; caching them makes a step cost
one token. What a layer caches depends on its attention: GQA keeps keys and values of its
``num_kv_heads`` heads, the absorbed MLA keeps only its compressed latent and the shared rope key.
"""

from __future__ import annotations

import torch


class KVCache:
    """Per-layer tensors of past tokens, grown along the time axis (dim 1).

    Args:
        num_layers: one store per decoder layer.
    """

    def __init__(self, num_layers: int) -> None:
        self.layers: list[dict[str, torch.Tensor]] = [{} for _ in range(num_layers)]
        self.length = 0  # tokens already cached: the position of the next token

    def numbers_per_token(self) -> int:
        """Numbers stored per token, summed over layers (the trailing dims of every cached tensor)."""
        return sum(t[0, 0].numel() for store in self.layers for t in store.values())


def append(store: dict[str, torch.Tensor], **new: torch.Tensor) -> list[torch.Tensor]:
    """Append ``new`` tensors of shape ``(B, T, ...)`` to ``store`` and return the grown tensors."""
    for name, tensor in new.items():
        store[name] = torch.cat([store[name], tensor], dim=1) if name in store else tensor
    return [store[name] for name in new]
