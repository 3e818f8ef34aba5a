r"""
The quiz
========

.. admonition:: Quiz
   :class: hint

   1. *In the forward flow, what happens after embeddings?*
      a) LM Head b) Decoder layers c) Final norm
   2. *True/False: MoE activates all experts for every token.*
   3. *What is the purpose of the softmax scale in attention? (Short answer:*
      :math:`1/\sqrt{d_k}` *)*

Write your answers in ``answers.toml`` (``[quiz]`` ``q1``, ``q2``, ``q3``); see
:doc:`../learners/submit`. Each answer can be checked by running the reference, as below.
"""

import torch
from torch import nn

from reference import Config, MoE, SimpleKimiK2

torch.manual_seed(0)
cfg = Config.tiny()
model = SimpleKimiK2(cfg).eval()

# %%
# Question 1
# ----------
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: b) the decoder layers
#    :class: answer
#
#    The forward pass is embed, then every decoder layer in turn, then the final norm, then the
#    LM head. The final norm and the LM head come *after* the layers. Recording the order in
#    which the top-level modules run, with forward hooks on the reference model:
#
# .. END SOLUTION

# BEGIN SOLUTION
order = []
for name, module in model.named_modules():
    if name.count(".") <= 1 and name and not isinstance(module, nn.ModuleList):
        module.register_forward_hook(lambda module, args, output, name=name: order.append(name))
with torch.no_grad():
    model(torch.tensor([[1, 2, 3]]))
print(" -> ".join(order))
# END SOLUTION

# %%
# Question 2
# ----------
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: False
#    :class: answer
#
#    Each token goes to its top-:math:`K` routed experts (``num_experts_per_tok``) and the
#    shared expert(s), no more. That is the whole point of MoE: the parameters grow with the
#    number of experts, the compute per token does not. Counting the distinct experts each token
#    used in a MoE layer of the reference:
#
# .. END SOLUTION

# BEGIN SOLUTION
moe = next(m for m in model.modules() if isinstance(m, MoE))
tokens = torch.randn(16, cfg.hidden_size)  # (N, hidden)
with torch.no_grad():
    _, chosen = moe.gate(tokens)  # (N, k)
per_token = {len(set(row.tolist())) for row in chosen}
print(f"distinct routed experts per token: {per_token} of {cfg.n_routed_experts}; shared: {cfg.n_shared_experts}")
# END SOLUTION

# %%
# Question 3
# ----------
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: it keeps the scores at unit scale, so the softmax does not saturate
#    :class: answer
#
#    A score :math:`q \cdot k` is a sum of :math:`d_k` products; with unit-variance entries its
#    variance is :math:`d_k`. Multiplying by :math:`1/\sqrt{d_k}` brings the variance back to 1
#    whatever the head width. Without it, wide heads produce large scores, the softmax becomes
#    nearly one-hot, and its gradients (:math:`p_i(\delta_{ij} - p_j)`) vanish, so attention stops
#    learning. (With YaRN, DeepSeek-V3 and Kimi-K2 multiply the scale by ``mscale`` squared, a
#    slight sharpening for long contexts.) The measurement is on :doc:`03_attention`; in short:
#
# .. END SOLUTION

# BEGIN SOLUTION
for d in (16, 192, 2048):
    q, k = torch.randn(1000, d), torch.randn(1000, d)
    raw = (q * k).sum(-1)
    print(f"d_k = {d:>4}: variance of q.k {raw.var():8.1f}; after 1/sqrt(d_k): {(raw / d**0.5).var():.2f}")
# END SOLUTION
