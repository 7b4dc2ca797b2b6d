"""Native vs emulated low-precision dtypes, from CPU flags and PyTorch's kernel level."""

from __future__ import annotations

from hilobench.measure.capability import cpu_flags, emulation_warning, native_cpu_dtype

X86_BF16 = {"avx2", "avx512f", "avx512_bf16"}


def test_cpu_flags_parse_x86_and_arm() -> None:
    assert cpu_flags("processor : 0\nflags : fpu avx2 avx512_bf16\n") == {
        "fpu",
        "avx2",
        "avx512_bf16",
    }
    assert "bf16" in cpu_flags("processor : 0\nFeatures : fp asimd bf16\n")
    assert cpu_flags("nothing here") == set()


def test_bf16_native_needs_the_flag_and_the_kernel_level() -> None:
    assert native_cpu_dtype("bfloat16", flags=X86_BF16, capability="AVX512", machine="x86_64")
    # AVX2-only CPU (e.g. an EPYC without AVX-512): emulated
    assert not native_cpu_dtype("bfloat16", flags={"avx2"}, capability="AVX2", machine="x86_64")
    # the hardware has it but PyTorch was capped to AVX2 (ATEN_CPU_CAPABILITY=avx2): emulated
    assert not native_cpu_dtype("bfloat16", flags=X86_BF16, capability="AVX2", machine="x86_64")
    assert native_cpu_dtype("bfloat16", flags={"bf16"}, capability="DEFAULT", machine="aarch64")
    assert not native_cpu_dtype("float16", flags=X86_BF16, capability="AVX512", machine="x86_64")
    assert native_cpu_dtype("float32", flags=set(), capability="DEFAULT", machine="x86_64")


def test_warning_only_for_emulated_cpu_dtypes() -> None:
    assert emulation_warning("cpu", "float32") is None
    assert emulation_warning("cuda", "bfloat16") is None
