"""Loading a local Hugging Face checkpoint folder, the format Kimi-K2 and DeepSeek-V3 ship in.

A folder holds ``config.json`` and the weights as safetensors: one ``model.safetensors`` or several shards
listed in ``model.safetensors.index.json`` (``{"weight_map": {tensor name: shard file}}``). Tensor names are
those of transformers' ``DeepseekV3ForCausalLM``. Ours are the same minus the leading ``model.``, except that
the routed experts of a MoE layer are stacked into three tensors, so that a layer computes all of them with
batched matrix products::

    model.layers.{i}.mlp.experts.{j}.gate_proj.weight (I, H)  ->  layers.{i}.mlp.experts.gate_proj (E, I, H)
    model.layers.{i}.mlp.experts.{j}.up_proj.weight   (I, H)  ->  layers.{i}.mlp.experts.up_proj   (E, I, H)
    model.layers.{i}.mlp.experts.{j}.down_proj.weight (H, I)  ->  layers.{i}.mlp.experts.down_proj (E, H, I)

transformers 5 holds experts fused in memory (``mlp.experts.gate_up_proj`` (E, 2I, H), gate rows first, and
``mlp.experts.down_proj`` (E, H, I)); its ``save_pretrained`` writes the per-expert names above, but a state
dict saved by hand keeps the fused ones, so both are read.

The safetensors format is simple enough to read without the ``safetensors`` package (torch is the only
dependency of ``reference``): an unsigned 64-bit little-endian header length ``n``, ``n`` bytes of JSON
mapping each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the bytes
that follow the header; an optional ``"__metadata__"`` entry holds strings), then the raw little-endian
tensor bytes. The file is memory-mapped, so a tensor's bytes are read from disk only when used.

The published checkpoints are FP8 (``float8_e4m3fn`` weights in 128 x 128 blocks, each weight ``W`` with a
float32 ``W_scale_inv`` of one number per block); they are dequantised to float32 here:
``W[r, c] = W_fp8[r, c] * scale_inv[r // 128, c // 128]``.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

# safetensors dtype names -> torch dtypes. The float8 types exist in torch >= 2.1.
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        SAFETENSORS_DTYPES[_name] = getattr(torch, _attr)

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"
EXPERT_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
_PER_EXPERT = re.compile(r"^layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")
_FUSED_GATE_UP = re.compile(r"^layers\.(\d+)\.mlp\.experts\.gate_up_proj$")
_LAYER = re.compile(r"^layers\.(\d+)\.")


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be loaded; the message names the file or tensor at fault."""


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read every tensor of one ``.safetensors`` file, memory-mapped (copy-on-write: the file never changes).

    Tensors whose bytes sit at an offset that is not a multiple of their element size are copied first,
    since a typed view of the mapped bytes needs aligned storage.
    """
    path = Path(path)
    if sys.byteorder != "little":
        raise CheckpointError(f"{path}: safetensors stores little-endian bytes; this machine is big-endian")
    file_size = path.stat().st_size
    if file_size < 8:
        raise CheckpointError(f"{path}: not a safetensors file: {file_size} bytes, shorter than the 8-byte header")
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if 8 + header_len > file_size:
            raise CheckpointError(
                f"{path}: not a safetensors file: header length {header_len} exceeds the file size {file_size}"
            )
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: not a safetensors file: its header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file: its header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    raw = torch.from_file(str(path), shared=False, size=file_size, dtype=torch.uint8)  # (file_size,)
    return {name: _tensor_from_header(path, name, entry, raw, data_start) for name, entry in header.items()}


def _tensor_from_header(path: Path, name: str, entry: object, raw: torch.Tensor, data_start: int) -> torch.Tensor:
    """One tensor of a safetensors file, from its header entry, checked against the file's bytes."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise CheckpointError(f"{path}: tensor {name!r}: header entry lacks dtype, shape or data_offsets")
    dtype_name, shape, offsets = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
    if not all(isinstance(n, int) and n >= 0 for n in (*shape, *offsets)) or len(offsets) != 2:
        raise CheckpointError(
            f"{path}: tensor {name!r}: shape {list(shape)} and data_offsets {offsets} must be non-negative integers"
        )
    begin, end = offsets
    if dtype_name not in SAFETENSORS_DTYPES:
        raise CheckpointError(
            f"{path}: tensor {name!r} has dtype {dtype_name}, which this torch {torch.__version__} cannot "
            f"hold (readable: {', '.join(SAFETENSORS_DTYPES)})"
        )
    dtype = SAFETENSORS_DTYPES[dtype_name]
    numel = 1
    for size in shape:
        numel *= size
    expected = numel * dtype.itemsize
    if end - begin != expected or data_start + end > raw.numel():
        raise CheckpointError(
            f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] do not hold {expected} bytes of "
            f"{dtype_name} {list(shape)} inside the file's {raw.numel() - data_start} data bytes"
        )
    data = raw[data_start + begin : data_start + end]  # (nbytes,) uint8
    if (data_start + begin) % dtype.itemsize:
        data = data.clone()
    return data.view(dtype).reshape(shape)


def checkpoint_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder as a Path, after checking that it is a folder holding ``config.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is a file"
        raise CheckpointError(
            f"{folder} {what}: from_pretrained needs a local folder holding config.json and safetensors "
            "weights (nothing is downloaded)"
        )
    if not (folder / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"{folder} has no config.json: from_pretrained reads the architecture from it; "
            "copy the config.json that came with the weights into the folder"
        )
    return folder


def read_hf_checkpoint(folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder under their file names: one file, or the shards of the index."""
    folder = Path(folder)
    index_path = folder / INDEX_FILE
    if index_path.is_file():
        return _read_sharded(index_path)
    if (folder / SINGLE_FILE).is_file():
        return read_safetensors(folder / SINGLE_FILE)
    present = sorted(p.name for p in folder.iterdir())
    raise CheckpointError(
        f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE} (it holds: {', '.join(present)}); "
        "only safetensors weights are read"
    )


def _read_sharded(index_path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the shards named in an index, checked both ways against its ``weight_map``."""
    weight_map = json.loads(index_path.read_text(encoding="utf-8")).get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index_path}: no weight_map object (tensor name -> shard file)")
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index_path.parent / shard
        if not shard_path.is_file():
            first = next(name for name, file in weight_map.items() if file == shard)
            raise CheckpointError(f"{index_path}: shard {shard} (holding {first}) is not in the folder")
        for name, tensor in read_safetensors(shard_path).items():
            if weight_map.get(name) != shard:
                where = f"maps to {weight_map[name]}" if name in weight_map else "does not list"
                raise CheckpointError(f"{shard_path}: holds {name}, which {INDEX_FILE} {where}")
            tensors[name] = tensor
    absent = sorted(set(weight_map) - set(tensors))
    if absent:
        raise CheckpointError(f"{index_path}: {absent[0]} is not in its shard {weight_map[absent[0]]}")
    return tensors


def dequantize_fp8(tensors: dict[str, torch.Tensor], block: tuple[int, int] = (128, 128)) -> dict[str, torch.Tensor]:
    """Replace each float8 weight ``W`` and its ``W_scale_inv`` (one float32 per block) by a float32 ``W``."""
    float8 = {SAFETENSORS_DTYPES.get("F8_E4M3"), SAFETENSORS_DTYPES.get("F8_E5M2")} - {None}
    out = dict(tensors)
    for name, weight in tensors.items():
        if weight.dtype not in float8:
            continue
        scale = out.pop(f"{name}_scale_inv", None)
        if scale is None:
            raise CheckpointError(f"{name} is float8 but the checkpoint has no {name}_scale_inv to dequantise it")
        rows, cols = weight.shape
        blocks = (-(-rows // block[0]), -(-cols // block[1]))
        if tuple(scale.shape) != blocks:
            raise CheckpointError(
                f"{name}_scale_inv has shape {tuple(scale.shape)}; {name} {(rows, cols)} in "
                f"{block[0]} x {block[1]} blocks needs {blocks}"
            )
        full = scale.float().repeat_interleave(block[0], 0)[:rows].repeat_interleave(block[1], 1)[:, :cols]
        out[name] = weight.float() * full  # (rows, cols)
    return out


def hf_to_reference(
    hf: dict[str, torch.Tensor], num_layers: int, num_mtp_layers: int = 0
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename HF tensors to ours and stack the experts; return the state dict and the ignored MTP names.

    Layers ``num_layers .. num_layers + num_mtp_layers - 1`` are DeepSeek-V3's multi-token-prediction module
    (``model.layers.61.*``), a training and speculative-decoding aid that the reference does not implement.
    """
    state: dict[str, torch.Tensor] = {}
    experts: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    ignored: list[str] = []
    for hf_name, tensor in hf.items():
        name = hf_name.removeprefix("model.")
        layer = _LAYER.match(name)
        if layer and num_layers <= int(layer.group(1)) < num_layers + num_mtp_layers:
            ignored.append(hf_name)
        elif match := _PER_EXPERT.match(name):
            experts.setdefault((int(match.group(1)), match.group(3)), {})[int(match.group(2))] = tensor
        elif match := _FUSED_GATE_UP.match(name):
            gate, up = tensor.chunk(2, dim=1)  # (E, I, H) each
            state[f"layers.{match.group(1)}.mlp.experts.gate_proj"] = gate
            state[f"layers.{match.group(1)}.mlp.experts.up_proj"] = up
        else:
            state[name] = tensor
    for (layer_idx, proj), by_index in sorted(experts.items()):
        name = f"layers.{layer_idx}.mlp.experts.{proj}"
        gaps = sorted(set(range(max(by_index) + 1)) - set(by_index))
        if gaps:
            raise CheckpointError(
                f"{name}: the checkpoint has experts up to {max(by_index)} but not "
                f"model.layers.{layer_idx}.mlp.experts.{gaps[0]}.{proj}.weight"
            )
        shapes = {tuple(t.shape) for t in by_index.values()}
        if len(shapes) > 1:
            raise CheckpointError(f"{name}: the checkpoint's experts disagree in shape: {sorted(shapes)}")
        state[name] = torch.stack([by_index[j] for j in range(len(by_index))])  # (E, out, in)
    return state, ignored


def load_hf_state_dict(folder: str | os.PathLike[str], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Our state dict from a Hugging Face checkpoint folder (config.json plus safetensors weights).

    config.json gives the layer count (to recognise the MTP layer, which is ignored with a warning) and the
    FP8 block size of quantised checkpoints. With a ``model`` (real or on the meta device), the state dict is
    also checked against it (:func:`match_model`), so it can go to ``load_state_dict(strict=True)``.
    """
    folder = checkpoint_folder(folder)
    hf_config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    block = hf_config.get("quantization_config", {}).get("weight_block_size", (128, 128))
    tensors = dequantize_fp8(read_hf_checkpoint(folder), tuple(block))
    num_layers = hf_config["num_hidden_layers"]
    state, ignored = hf_to_reference(tensors, num_layers, hf_config.get("num_nextn_predict_layers", 0))
    if ignored:
        warnings.warn(
            f"{folder}: ignored {len(ignored)} tensors of the multi-token-prediction module "
            f"(model.layers.{num_layers}.*); the reference implements the main model only",
            stacklevel=2,
        )
    return state if model is None else match_model(state, model, folder)


def match_model(
    state: dict[str, torch.Tensor], model: nn.Module, source: str | os.PathLike[str]
) -> dict[str, torch.Tensor]:
    """Check a state dict against a model, listing every missing, unexpected or misshapen tensor at once.

    Parameters the model ties together (a tied ``lm_head``) need only one of their names in the checkpoint;
    the returned state dict fills in the others.
    """
    expected = model.state_dict()
    state = dict(state)
    aliases: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
    for names in aliases.values():
        present = [n for n in names if n in state]
        for name in names:
            if present and name not in state:
                state[name] = state[present[0]]
    problems = [f"  missing: {name} (checkpoint name {_hf_name(name)})" for name in expected if name not in state]
    problems += [f"  unexpected: {_hf_name(name)} (our name {name})" for name in state if name not in expected]
    problems += [
        f"  {name}: checkpoint has {tuple(state[name].shape)}, model expects {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    ]
    if problems:
        raise CheckpointError(
            f"{source}: the weights do not fit the model that config.json describes:\n" + "\n".join(problems)
        )
    return state


def _hf_name(name: str) -> str:
    """The HF checkpoint name that holds one of our tensors (stacked experts: the per-expert pattern)."""
    if name.startswith("lm_head."):
        return name
    for proj in EXPERT_PROJECTIONS:
        if name.endswith(f".mlp.experts.{proj}"):
            return f"model.{name.removesuffix(proj)}{{j}}.{proj}.weight"
    return f"model.{name}"
