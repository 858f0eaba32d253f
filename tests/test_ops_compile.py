"""The fused kernels compile for a GPU (sm_90, on the CPU: Triton's compiler needs no device).

The interpreter tests run the kernels' arithmetic but not Triton's compiler, which is where a type error, a
constexpr misuse or an unsupported construct shows; CPU-only CI would otherwise first meet those on a GPU.
Every compile-time flag is compiled on and off at least once.
"""

from __future__ import annotations

from typing import Any

import pytest
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from vidloader.ops import _kernels

POINTERS = {
    "data_ptr": "*u8",
    "flip_ptr": "*u8",
    "geo_ptr": "*i64",
    "boxes_ptr": "*i64",
    "dest_ptr": "*i64",
    "jitter_ptr": "*fp32",
    "gray_mean_ptr": "*fp32",
    "partial_ptr": "*fp32",
}
OUT = {"float32": "*fp32", "float16": "*fp16", "bfloat16": "*i16"}  # bfloat16 is stored as its int16 bits
FLAGS = ("UNIFORM", "LETTERBOX", "ANTIALIAS", "NCTHW", "JITTER")
# (kernel, out dtype, flags): the dense op's default and antialiased specialisations, the ragged op's with
# and without letterbox, and the grey pre-pass both ways.
CASES = [
    ("_fused_kernel", "float16", (1, 0, 0, 1, 0)),
    ("_fused_kernel", "float32", (1, 0, 1, 0, 1)),
    ("_fused_kernel", "bfloat16", (0, 1, 0, 0, 1)),
    ("_fused_kernel", "bfloat16", (0, 1, 1, 1, 0)),
    ("_fused_kernel", "float32", (0, 0, 1, 1, 1)),
    ("_gray_sum_kernel", "float32", (1, 0, 1, 0, 0)),
    ("_gray_sum_kernel", "float32", (0, 1, 0, 0, 0)),
]


def _signature(fn: Any, out_dtype: str, constants: dict[str, Any]) -> dict[str, str]:
    def kind(name: str) -> str:
        if name in constants:
            return "constexpr"
        if name == "out_ptr":
            return OUT[out_dtype]
        if name.startswith(("scale", "shift")):
            return "fp32"
        return POINTERS.get(name, "i32")

    return {name: kind(name) for name in fn.arg_names}


@pytest.mark.slow
@pytest.mark.parametrize(("kernel", "out_dtype", "flags"), CASES)
def test_kernel_compiles_for_sm90(kernel: str, out_dtype: str, flags: tuple[int, ...]) -> None:
    fn = getattr(_kernels, kernel)
    constants: dict[str, Any] = {
        name: bool(value) for name, value in zip(FLAGS, flags, strict=True) if name in fn.arg_names
    }
    constants.update(BLOCK_H=_kernels.BLOCK_H, BLOCK_W=_kernels.BLOCK_W)
    if "BF16_BITS" in fn.arg_names:
        constants["BF16_BITS"] = out_dtype == "bfloat16"
    source = ASTSource(fn, _signature(fn, out_dtype, constants), constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    ptx = compiled.asm["ptx"]
    assert ".target sm_90" in ptx and f".entry {kernel}" in ptx
    assert "st.global" in ptx
