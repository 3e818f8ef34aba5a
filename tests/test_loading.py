"""Loading: the safetensors reader, sharded and quantised checkpoints, and every error message.

The reader is checked against the ``safetensors`` package (a test-only dependency); checkpoints
are written by transformers' ``save_pretrained`` or by hand, in temporary folders.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from hf_checkpoints import random_hf_model, write_safetensors
from safetensors.torch import load_file, save_file

from reference import SimpleKimiK2
from reference.loading import (
    SAFETENSORS_DTYPES,
    CheckpointError,
    dequantize_fp8,
    load_hf_state_dict,
    read_safetensors,
)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and bytes (works for float8, which has no CPU ``==``)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8))


@pytest.fixture(scope="module")
def hf_model():
    """A small random transformers DeepseekV3ForCausalLM (4 layers, the last two MoE)."""
    return random_hf_model("deepseek-v3-shaped")


@pytest.fixture
def saved(hf_model, tmp_path: Path) -> Path:
    """The model written by save_pretrained into a fresh folder."""
    hf_model.save_pretrained(tmp_path)
    return tmp_path


def rewrite(folder: Path, change) -> None:
    """Apply ``change`` to the folder's tensors (a dict of HF names) and write them back."""
    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors")


def test_reader_matches_the_safetensors_package(tmp_path: Path) -> None:
    """Every dtype the checkpoints use, a scalar and an empty tensor read back bit for bit."""
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=g),
        "f16": torch.randn(7, generator=g).half(),
        "bf16": torch.randn(2, 3, 4, generator=g).bfloat16(),
        "i64": torch.randint(-(2**40), 2**40, (6,), generator=g),
        "i32": torch.randint(-(2**30), 2**30, (2, 2), generator=g, dtype=torch.int32),
        "bool": torch.rand(9, generator=g) > 0.5,
        "f8": (torch.randn(4, 8, generator=g) * 10).to(torch.float8_e4m3fn),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 4),
    }
    save_file(tensors, tmp_path / "a.safetensors", metadata={"format": "pt"})
    ours, theirs = read_safetensors(tmp_path / "a.safetensors"), load_file(tmp_path / "a.safetensors")
    assert sorted(ours) == sorted(theirs) == sorted(tensors)
    for name, tensor in tensors.items():
        assert same(ours[name], theirs[name]) and same(ours[name], tensor), name


def test_reader_handles_misaligned_tensors(tmp_path: Path) -> None:
    """A float32 tensor starting at an odd byte (legal in the format) is copied, not mis-viewed."""
    values = torch.tensor([1.5, -2.0, 3.0])
    write_safetensors(
        tmp_path / "m.safetensors",
        {"flags": ("BOOL", [3], bytes([1, 0, 1])), "x": ("F32", [3], values.numpy().tobytes())},
        pad_to=1,
    )
    ours = read_safetensors(tmp_path / "m.safetensors")
    assert ours["flags"].tolist() == [True, False, True]
    assert torch.equal(ours["x"], values)


def test_bf16_checkpoint_loads_into_float32(hf_model, tmp_path: Path) -> None:
    """A bfloat16 checkpoint loads exactly: every float32 weight equals its bfloat16 value."""
    bf16 = random_hf_model("deepseek-v3-shaped").to(torch.bfloat16)
    bf16.save_pretrained(tmp_path)
    assert {t.dtype for n, t in load_file(tmp_path / "model.safetensors").items() if "correction" not in n} == {
        torch.bfloat16
    }
    ours = SimpleKimiK2.from_pretrained(tmp_path)
    assert ours.embed_tokens.weight.dtype == torch.float32
    assert torch.equal(ours.embed_tokens.weight, bf16.model.embed_tokens.weight.float())
    gate_up = bf16.model.layers[3].mlp.experts.gate_up_proj  # (E, 2I, H)
    assert torch.equal(ours.layers[3].mlp.experts.up_proj, gate_up.chunk(2, dim=1)[1].float())


def test_sharded_checkpoint_equals_single_file(hf_model, saved: Path, tmp_path_factory) -> None:
    """Shards listed in model.safetensors.index.json give the same state dict as one file."""
    sharded = tmp_path_factory.mktemp("sharded")
    hf_model.save_pretrained(sharded, max_shard_size="40KB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    assert not (sharded / "model.safetensors").exists()
    one, many = load_hf_state_dict(saved), load_hf_state_dict(sharded)
    assert sorted(one) == sorted(many)
    assert all(torch.equal(one[name], many[name]) for name in one)


def test_fused_expert_names_load_too(hf_model, saved: Path) -> None:
    """transformers' in-memory names (experts.gate_up_proj (E, 2I, H), experts.down_proj) are read as well."""
    save_file({n: t.contiguous() for n, t in hf_model.state_dict().items()}, saved / "model.safetensors")
    assert "model.layers.3.mlp.experts.gate_up_proj" in load_file(saved / "model.safetensors")
    ours = SimpleKimiK2.from_pretrained(saved)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    with torch.no_grad():
        assert (ours(ids) - hf_model(ids).logits).abs().max().item() <= 1e-4


def test_fp8_weights_are_dequantised_per_block(tmp_path: Path) -> None:
    """W = W_fp8 * scale_inv[r // 128, c // 128], partial edge blocks included."""
    g = torch.Generator().manual_seed(0)
    fp8 = (torch.randn(130, 260, generator=g) * 100).to(torch.float8_e4m3fn)  # 2 x 3 blocks, edges partial
    scale = torch.rand(2, 3, generator=g) + 0.5
    got = dequantize_fp8({"w.weight": fp8, "w.weight_scale_inv": scale, "n.weight": torch.ones(4)})
    assert sorted(got) == ["n.weight", "w.weight"]
    rows, cols = torch.arange(130)[:, None] // 128, torch.arange(260)[None, :] // 128
    assert torch.equal(got["w.weight"], fp8.float() * scale[rows, cols])
    assert torch.equal(got["n.weight"], torch.ones(4))


def test_fp8_checkpoint_through_the_folder_reader(hf_model, saved: Path) -> None:
    """A checkpoint whose attention output projections are FP8 with scales loads them dequantised."""
    name = "model.layers.0.self_attn.o_proj.weight"
    weight = load_file(saved / "model.safetensors")[name]
    fp8 = weight.to(torch.float8_e4m3fn)
    scale = torch.tensor([[0.5]])  # one 128 x 128 block covers the (64, 64) weight

    def quantise(tensors: dict) -> None:
        tensors[name], tensors[f"{name}_scale_inv"] = fp8, scale

    rewrite(saved, quantise)
    state = load_hf_state_dict(saved)
    assert torch.equal(state["layers.0.self_attn.o_proj.weight"], fp8.float() * 0.5)
    assert not any(n.endswith("_scale_inv") for n in state)


def test_mtp_layer_is_ignored_with_a_warning(hf_model, saved: Path) -> None:
    """DeepSeek-V3 ships its multi-token-prediction module as layer num_hidden_layers: dropped, with a note."""
    n = hf_model.config.num_hidden_layers

    def add_mtp(tensors: dict) -> None:
        tensors[f"model.layers.{n}.enorm.weight"] = torch.ones(64)
        tensors[f"model.layers.{n}.eh_proj.weight"] = torch.zeros(64, 128)

    rewrite(saved, add_mtp)
    config = json.loads((saved / "config.json").read_text())
    assert config["num_nextn_predict_layers"] == 1
    message = (
        f"{saved}: ignored 2 tensors of the multi-token-prediction module (model.layers.{n}.*); "
        "the reference implements the main model only"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"):
        ours = SimpleKimiK2.from_pretrained(saved)
    assert len(ours.layers) == n


def test_no_warning_without_mtp(saved: Path) -> None:
    """A checkpoint without the MTP module loads silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SimpleKimiK2.from_pretrained(saved)


def load_error(folder: Path) -> str:
    """The message of the CheckpointError that from_pretrained raises for ``folder``."""
    with pytest.raises(CheckpointError) as info:
        SimpleKimiK2.from_pretrained(folder)
    return str(info.value)


def test_error_missing_tensor(saved: Path) -> None:
    rewrite(saved, lambda t: t.pop("model.layers.0.self_attn.o_proj.weight"))
    assert load_error(saved) == (
        f"{saved}: the weights do not fit the model that config.json describes:\n"
        "  missing: layers.0.self_attn.o_proj.weight (checkpoint name model.layers.0.self_attn.o_proj.weight)"
    )


def test_error_missing_projection_of_every_expert(saved: Path) -> None:
    def drop(tensors: dict) -> None:
        for j in range(16):
            tensors.pop(f"model.layers.2.mlp.experts.{j}.up_proj.weight")

    rewrite(saved, drop)
    assert load_error(saved) == (
        f"{saved}: the weights do not fit the model that config.json describes:\n"
        "  missing: layers.2.mlp.experts.up_proj (checkpoint name model.layers.2.mlp.experts.{j}.up_proj.weight)"
    )


def test_error_missing_one_expert(saved: Path) -> None:
    rewrite(saved, lambda t: t.pop("model.layers.3.mlp.experts.5.down_proj.weight"))
    assert load_error(saved) == (
        "layers.3.mlp.experts.down_proj: the checkpoint has experts up to 15 but not "
        "model.layers.3.mlp.experts.5.down_proj.weight"
    )


def test_error_unexpected_tensor(saved: Path) -> None:
    rewrite(saved, lambda t: t.update({"model.layers.1.self_attn.q_proj.weight": torch.zeros(128, 64)}))
    assert load_error(saved) == (
        f"{saved}: the weights do not fit the model that config.json describes:\n"
        "  unexpected: model.layers.1.self_attn.q_proj.weight (our name layers.1.self_attn.q_proj.weight)"
    )


def test_error_shape_mismatch(saved: Path) -> None:
    def narrow(tensors: dict) -> None:
        for j in range(16):
            name = f"model.layers.3.mlp.experts.{j}.gate_proj.weight"
            tensors[name] = tensors[name][:24].contiguous()

    rewrite(saved, narrow)
    assert load_error(saved) == (
        f"{saved}: the weights do not fit the model that config.json describes:\n"
        "  layers.3.mlp.experts.gate_proj: checkpoint has (16, 24, 64), model expects (16, 32, 64)"
    )


def test_error_lists_every_problem(saved: Path) -> None:
    """Several problems are reported together, so one run shows them all."""

    def spoil(tensors: dict) -> None:
        tensors.pop("model.norm.weight")
        tensors["model.norm.bias"] = torch.zeros(64)
        tensors["lm_head.weight"] = tensors["lm_head.weight"][:100].contiguous()

    rewrite(saved, spoil)
    assert load_error(saved) == (
        f"{saved}: the weights do not fit the model that config.json describes:\n"
        "  missing: norm.weight (checkpoint name model.norm.weight)\n"
        "  unexpected: model.norm.bias (our name norm.bias)\n"
        "  lm_head.weight: checkpoint has (100, 64), model expects (128, 64)"
    )


def test_error_missing_config(saved: Path) -> None:
    (saved / "config.json").unlink()
    assert load_error(saved) == (
        f"{saved} has no config.json: from_pretrained reads the architecture from it; "
        "copy the config.json that came with the weights into the folder"
    )


def test_error_not_a_folder(tmp_path: Path) -> None:
    absent = tmp_path / "Kimi-K2-Instruct"
    assert load_error(absent) == (
        f"{absent} does not exist: from_pretrained needs a local folder holding config.json and safetensors "
        "weights (nothing is downloaded)"
    )
    a_file = tmp_path / "model.safetensors"
    a_file.write_bytes(b"")
    assert load_error(a_file) == (
        f"{a_file} is a file: from_pretrained needs a local folder holding config.json and safetensors "
        "weights (nothing is downloaded)"
    )


def test_error_no_weights(saved: Path) -> None:
    (saved / "model.safetensors").rename(saved / "weights.bin")
    assert load_error(saved) == (
        f"{saved} has neither model.safetensors nor model.safetensors.index.json "
        "(it holds: config.json, generation_config.json, weights.bin); only safetensors weights are read"
    )


def test_error_shard_missing(hf_model, tmp_path: Path) -> None:
    hf_model.save_pretrained(tmp_path, max_shard_size="40KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]
    shard = sorted(set(index.values()))[1]
    first = next(name for name, file in index.items() if file == shard)
    (tmp_path / shard).unlink()
    assert load_error(tmp_path) == (
        f"{tmp_path / 'model.safetensors.index.json'}: shard {shard} (holding {first}) is not in the folder"
    )


def test_error_index_and_shard_disagree(hf_model, tmp_path: Path) -> None:
    hf_model.save_pretrained(tmp_path, max_shard_size="40KB")
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = index["weight_map"]["model.norm.weight"]
    index["weight_map"]["model.ghost.weight"] = shard
    index_path.write_text(json.dumps(index))
    assert load_error(tmp_path) == f"{index_path}: model.ghost.weight is not in its shard {shard}"
    del index["weight_map"]["model.ghost.weight"]
    del index["weight_map"]["model.norm.weight"]
    index_path.write_text(json.dumps(index))
    assert load_error(tmp_path) == (
        f"{tmp_path / shard}: holds model.norm.weight, which model.safetensors.index.json does not list"
    )


def test_error_fp8_without_scale(saved: Path) -> None:
    name = "model.layers.0.self_attn.o_proj.weight"
    rewrite(saved, lambda t: t.update({name: t[name].to(torch.float8_e4m3fn)}))
    assert load_error(saved) == f"{name} is float8 but the checkpoint has no {name}_scale_inv to dequantise it"


def test_error_fp8_scale_of_wrong_shape() -> None:
    fp8 = torch.zeros(130, 64).to(torch.float8_e4m3fn)
    with pytest.raises(CheckpointError) as info:
        dequantize_fp8({"w.weight": fp8, "w.weight_scale_inv": torch.ones(1, 1)})
    assert str(info.value) == "w.weight_scale_inv has shape (1, 1); w.weight (130, 64) in 128 x 128 blocks needs (2, 1)"


def read_error(path: Path) -> str:
    """The message of the CheckpointError that read_safetensors raises for ``path``."""
    with pytest.raises(CheckpointError) as info:
        read_safetensors(path)
    return str(info.value)


def test_error_unsupported_dtype(tmp_path: Path) -> None:
    path = tmp_path / "e8m0.safetensors"
    write_safetensors(path, {"scales": ("F8_E8M0", [2], b"\x7f\x80")})
    assert read_error(path) == (
        f"{path}: tensor 'scales' has dtype F8_E8M0, which this torch {torch.__version__} cannot hold "
        f"(readable: {', '.join(SAFETENSORS_DTYPES)})"
    )
    assert "F8_E4M3" in SAFETENSORS_DTYPES  # the published checkpoints' dtype is readable


def test_error_broken_files(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x02")
    assert read_error(short) == f"{short}: not a safetensors file: 2 bytes, shorter than the 8-byte header"
    long_header = tmp_path / "long.safetensors"
    long_header.write_bytes((1000).to_bytes(8, "little") + b"{}")
    assert read_error(long_header) == (
        f"{long_header}: not a safetensors file: header length 1000 exceeds the file size 10"
    )
    not_json = tmp_path / "text.safetensors"
    not_json.write_bytes((4).to_bytes(8, "little") + b"{x: ")
    with pytest.raises(json.JSONDecodeError) as decode:
        json.loads("{x: ")
    assert read_error(not_json) == f"{not_json}: not a safetensors file: its header is not JSON ({decode.value})"
    truncated = tmp_path / "truncated.safetensors"
    write_safetensors(truncated, {"x": ("F32", [4], bytes(16))})
    truncated.write_bytes(truncated.read_bytes()[:-4])
    assert read_error(truncated) == (
        f"{truncated}: tensor 'x': data_offsets [0, 16] do not hold 16 bytes of F32 [4] inside the file's 12 data bytes"
    )
    incomplete = tmp_path / "incomplete.safetensors"
    header = json.dumps({"x": {"dtype": "F32", "shape": [1]}}).encode()
    incomplete.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    assert read_error(incomplete) == f"{incomplete}: tensor 'x': header entry lacks dtype, shape or data_offsets"
    a_list = tmp_path / "list.safetensors"
    a_list.write_bytes((2).to_bytes(8, "little") + b"[]")
    assert read_error(a_list) == f"{a_list}: not a safetensors file: its header is not a JSON object"
    negative = tmp_path / "negative.safetensors"
    write_safetensors(negative, {"x": ("F32", [-1, 4], bytes(16))})
    assert read_error(negative) == (
        f"{negative}: tensor 'x': shape [-1, 4] and data_offsets [0, 16] must be non-negative integers"
    )
    wrong_size = tmp_path / "wrong.safetensors"
    write_safetensors(wrong_size, {"x": ("F32", [5], bytes(16))})
    assert read_error(wrong_size) == (
        f"{wrong_size}: tensor 'x': data_offsets [0, 16] do not hold 20 bytes of F32 [5] inside the file's "
        "16 data bytes"
    )


def test_tied_embeddings_stay_tied(tmp_path: Path) -> None:
    """With tie_word_embeddings, save_pretrained writes no lm_head.weight; the loaded head *is* the embedding."""
    hf = random_hf_model("kimi-k2-shaped", tie_word_embeddings=True)
    hf.save_pretrained(tmp_path)
    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")
    ours = SimpleKimiK2.from_pretrained(tmp_path)
    assert ours.lm_head.weight is ours.embed_tokens.weight
    ids = torch.tensor([[5, 3, 8, 1, 2]])
    with torch.no_grad():
        assert (ours(ids) - hf(ids).logits).abs().max().item() <= 1e-4
