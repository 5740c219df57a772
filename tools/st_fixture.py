#!/usr/bin/env python3
"""safetensors reference data for tests/test_safetensors.c.

Default: write tests/fixtures/st/torch.safetensors with the Python safetensors library
(the reference writer), holding
  * f32_src (F32): values chosen to stress f32 -> f16/bf16 rounding (exact ties at many
    exponents, the subnormal and overflow boundaries, +-0, +-inf, random values),
    f32_to_f16 (F16) and f32_to_bf16 (BF16): torch's round-to-nearest-even of f32_src;
  * f64_src (F64) and f64_to_f32 (F32): torch's f64 -> f32 conversion;
  * bf16_all (BF16, every non-NaN pattern with a zero low byte) and bf16_all_f32;
  * a few non-float tensors (I64, I16, U8, BOOL), a 0-d scalar and an empty tensor, and
    "__metadata__" {"format": "pt"}: the reader must accept what the reference writes.

--check: compile a tiny C program against build/librostesim.a (run `make` first) that
writes files with st_write, then load them with safetensors (numpy and torch
front ends) and compare names, shapes, values and metadata.

Usage (from the repository root):
    /tmp/venv/bin/python tools/st_fixture.py          # regenerate the fixture
    /tmp/venv/bin/python tools/st_fixture.py --check  # Python reads what we write
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file as np_load
from safetensors.torch import load_file, save_file

OUT = os.path.join("tests", "fixtures", "st", "torch.safetensors")


def rounding_cases():
    g = np.random.default_rng(20240613)
    v = []
    # f16 ties: halfway between consecutive f16 values, across normal exponents
    for e in range(-14, 16):
        for m in (0, 1, 2, 3, 511, 512, 1022, 1023):
            lo = np.float32(np.ldexp(1024 + m, e - 10))
            v += [lo + np.float32(np.ldexp(0.5, e - 10)), np.nextafter(lo + np.float32(np.ldexp(0.5, e - 10)), np.float32(np.inf))]
    # f16 subnormal ties and the boundaries around 2^-25 and 2^-14
    for m in range(0, 40):
        v.append(np.float32(np.ldexp(m + 0.5, -24)))
    for x in (2.0**-25, 2.0**-24, 2.0**-14, 65504.0, 65519.0, 65520.0, 65536.0, 1e-8, 3e-8, 6e-8):
        x = np.float32(x)
        v += [x, np.nextafter(x, np.float32(0)), np.nextafter(x, np.float32(np.inf))]
    # bf16 ties: low 16 bits exactly 0x8000, odd and even upper halves
    for hi in (0x3f80, 0x3f81, 0x4049, 0x404a, 0x7f7f, 0x0001, 0x0080):
        for lo in (0x7fff, 0x8000, 0x8001):
            v.append(np.array([(hi << 16) | lo], dtype=np.uint32).view(np.float32)[0])
    v += [np.float32(0.0), np.float32(-0.0), np.float32(np.inf), np.float32(-np.inf), np.float32(3.4028235e38),
          np.float32(1e-45), np.float32(1.17549435e-38)]
    v += list((g.standard_normal(600) * np.exp(g.uniform(-20, 12, 600))).astype(np.float32))
    v = np.array(v, dtype=np.float32)
    return np.concatenate([v, -v])


def generate():
    src = torch.from_numpy(rounding_cases())
    f64 = torch.from_numpy(np.concatenate([
        np.random.default_rng(7).standard_normal(200) * 10.0 ** np.random.default_rng(8).uniform(-40, 40, 200),
        [1 + 2.0**-24, 1 + 2.0**-24 + 2.0**-50, 1 + 3 * 2.0**-24, 3.5e38, -3.5e38, 1e-46, 7e-46, 0.0, -0.0]]))
    bits = torch.arange(0, 1 << 16, 256, dtype=torch.int32).to(torch.int16)  # low byte zero: no NaN of 0x7f81..
    bf16 = bits.view(torch.bfloat16)
    t = {
        "f32_src": src,
        "f32_to_f16": src.to(torch.float16),
        "f32_to_bf16": src.to(torch.bfloat16),
        "f64_src": f64,
        "f64_to_f32": f64.to(torch.float32),
        "bf16_all": bf16,
        "bf16_all_f32": bf16.to(torch.float32),
        "ids.i64": torch.tensor([[0, -1, 2**40], [5, 6, 7]], dtype=torch.int64),
        "ids.i16": torch.tensor([-3, 3], dtype=torch.int16),
        "mask.u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "mask.bool": torch.tensor([True, False], dtype=torch.bool),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(t, OUT, metadata={"format": "pt"})
    print(f"{OUT}: {os.path.getsize(OUT)} bytes, {len(t)} tensors ({src.numel()} rounding cases)")


C_PROG = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "llm/io/safetensors.h"
#include "quant/status.h"
/* tensor k holds (k * 1000 + i) * 0.5 */
int main(int argc, char **argv)
{
    static float buf[4][600];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 600; i++) buf[k][i] = (float)(k * 1000 + i) * 0.5f;
    static const int32_t i32[5] = {-2147483647 - 1, -1, 0, 7, 2147483647};
    static const int8_t i8[4] = {-128, -1, 0, 127};
    static const uint8_t u8[6] = {0, 1, 0x0f, 0xf0, 0x80, 0xff};
    st_out c[] = {
        {"q.zeros", i32, 1, {5}, ST_I32},
        {"q.codes", i8, 2, {2, 2}, ST_I8},
        {"q.packed", u8, 2, {2, 3}, ST_U8},
        {"q.scales", buf[0], 1, {3}, ST_F32},
    };
    st_out t[] = {
        {"model.embed.weight", buf[0], 2, {20, 30}},
        {"scalar", buf[1], 0, {0}},
        {"empty", NULL, 3, {4, 0, 5}},
        {"name with \"quotes\", \\ and \t tab", buf[2], 1, {7}},
        {"layers.0.\xc3\xa9t\xc3\xa9", buf[3], 4, {2, 3, 2, 5}},
    };
    const char *meta[] = {"format", "pt", "note", "line\nbreak \"q\""};
    if (st_write(argv[1], t, 5, meta, 2) || st_write(argv[2], t, 2, NULL, 0) || st_write(argv[3], c, 4, NULL, 0)) {
        fprintf(stderr, "%s\n", rs_last_error());
        return 1;
    }
    return 0;
}
"""


def check():
    tmp = tempfile.mkdtemp()
    prog = os.path.join(tmp, "write")
    with open(prog + ".c", "w") as f:
        f.write(C_PROG)
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-I.", "-I/usr/include/cjson", "-fopenmp", prog + ".c",
                    "build/librostesim.a", "-o", prog, "-lopenblas", "-llapacke", "-lgsl", "-lcjson", "-lpcre2-8",
                    "-lutf8proc", "-lm"], check=True)
    a, b = os.path.join(tmp, "a.safetensors"), os.path.join(tmp, "b.safetensors")
    c = os.path.join(tmp, "c.safetensors")
    subprocess.run([prog, a, b, c], check=True)
    want = {"model.embed.weight": (0, (20, 30)), "scalar": (1, ()), "empty": (None, (4, 0, 5)),
            'name with "quotes", \\ and \t tab': (2, (7,)), "layers.0.été": (3, (2, 3, 2, 5))}
    bad = 0
    for path, names in ((a, list(want)), (b, list(want)[:2])):
        from safetensors import safe_open
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        tt, nn = load_file(path), np_load(path)
        ok = sorted(tt) == sorted(names) and sorted(nn) == sorted(names)
        for name in names:
            k, shape = want[name]
            n = int(np.prod(shape)) if shape else 1
            ref = np.zeros(0, np.float32) if k is None else (np.float32(k * 1000) + np.arange(n, dtype=np.float32)) * np.float32(0.5)
            for x in (tt[name].numpy(), nn[name]):
                ok &= x.dtype == np.float32 and tuple(x.shape) == shape and np.array_equal(x.reshape(-1), ref[:n] if k is not None else ref)
        if path == a:
            ok &= meta == {"format": "pt", "note": 'line\nbreak "q"'}
        else:
            ok &= meta is None
        hlen = int.from_bytes(open(path, "rb").read(8), "little")
        ok &= hlen % 8 == 0
        bad += not ok
        print(f"{'PASS' if ok else 'FAIL'} {os.path.basename(path)}: safetensors {__import__('safetensors').__version__}"
              f" (numpy and torch) reads {len(names)} tensors, values, shapes and metadata {meta}; header {hlen} bytes")
    # integer dtypes (the packed int model export writes U8 / I8 / I32 beside F32)
    want_c = {"q.zeros": np.array([-2**31, -1, 0, 7, 2**31 - 1], np.int32),
              "q.codes": np.array([[-128, -1], [0, 127]], np.int8),
              "q.packed": np.array([[0, 1, 0x0F], [0xF0, 0x80, 0xFF]], np.uint8),
              "q.scales": np.array([0, 0.5, 1], np.float32)}
    tt, nn = load_file(c), np_load(c)
    ok = sorted(tt) == sorted(want_c) and sorted(nn) == sorted(want_c)
    for name, ref in want_c.items():
        for x in (tt[name].numpy(), nn[name]):
            ok &= x.dtype == ref.dtype and x.shape == ref.shape and np.array_equal(x, ref)
    bad += not ok
    print(f"{'PASS' if ok else 'FAIL'} c.safetensors: numpy and torch read I32, I8, U8 and F32 tensors with their dtypes and values")
    print(f"safetensors write check: {bad} failures")
    return 1 if bad else 0


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(check())
    generate()
