#!/usr/bin/env python3
# rostesim: golden file for quant/quant.c, written with PyTorch float32 ops.
# SPDX-License-Identifier: GPL-3.0-or-later
#
# An independent implementation of ROSTE.md §2 (the fake quantizer) in torch ops:
#   Q(x) = (clamp(round(x/s) + z, qmin, qmax) - z) * s, one (s, z) per group,
#   sym : s = (c*max|x|)/(2^(b-1)-1), z = 0, codes [-2^(b-1), 2^(b-1)-1]
#   asym: codes [0, 2^b-1]; code clip: lo = c*min, s = (c*max - lo)/(2^b-1), z = round(-lo/s)
#                           paper clip: s = (c*(max-min))/(2^b-1), z = round(-min/s)
#   degenerate group (s == 0): s = max(|min|,|max|) or 1, z = 0 (sym) / round(-min/s) (asym)
# and the STE gradient of sum(Q(x)*g) through x + (Q(x) - x).detach() (identity STE)
# and through a clamp mask (clipped STE).
#
# Usage (from the repository root): tools/.venv/bin/python tools/quant_fixture.py [out.bin]
# Default output: tests/fixtures/quant_torch.bin. Format: see tests/test_quant.c.
import struct
import sys

import numpy as np
import torch

F32 = torch.float32
SYM, ASYM = 0, 1
TENSOR, ROW, GROUP = 0, 1, 2
CODE, PAPER = 0, 1
EVEN, AWAY = 0, 1
STE_ID, STE_CLIP = 0, 1


def t32(v):
    return torch.tensor(v, dtype=F32)


def round_mode(v, mode):
    if mode == EVEN:
        return torch.round(v)  # half to even
    # Half away from zero, exact for every float: trunc, then step away if |frac| >= .5.
    # (sign(v)*floor(|v| + .5) is off for 0.49999997 and for odd integers >= 2^23, where
    # |v| + .5 itself rounds; the two agree on every value this fixture produces.)
    t = torch.trunc(v)
    frac = v - t  # exact
    r = t + torch.sign(v) * (frac.abs() >= 0.5).to(F32)
    NAIVE_DIFF[0] += int((r != torch.sign(v) * torch.floor(v.abs() + 0.5)).sum())
    return r


NAIVE_DIFF = [0]  # elements where sign*floor(|v|+.5) would have differed


def grouped(x, gran, group):
    """View x (R, C) as (ngroups, len) rows of contiguous groups."""
    R, C = x.shape
    if gran == TENSOR:
        return x.reshape(1, R * C)
    if gran == ROW:
        return x.reshape(R, C)
    return x.reshape(R * (C // group), group)


def params(xg, bits, scheme, clip, clipmode, rmode):
    """Per-group (s, z), shapes (G, 1), all float32 ops."""
    c = t32(clip)
    mn = xg.amin(dim=1, keepdim=True)
    mx = xg.amax(dim=1, keepdim=True)
    deg_s = torch.maximum(mn.abs(), mx.abs())
    deg_s = torch.where(deg_s > 0, deg_s, t32(1.0))
    if scheme == SYM:
        amax = xg.abs().amax(dim=1, keepdim=True)
        s = (c * amax) / t32(2 ** (bits - 1) - 1)
        s = torch.where(s == 0, deg_s, s)
        z = torch.zeros_like(s)
    else:
        n = t32(2**bits - 1)
        if clipmode == CODE:
            lo = c * mn
            s = (c * mx - lo) / n
        else:
            lo = mn
            s = (c * (mx - mn)) / n
        degen = s == 0
        s = torch.where(degen, deg_s, s)
        lo = torch.where(degen, mn, lo)
        z = round_mode(-lo / s, rmode) + 0.0  # -0 -> +0
    return s, z


def qrange(bits, scheme):
    if scheme == SYM:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def fake(x, bits, scheme, gran, group, clip, clipmode, rmode):
    if bits >= 16:
        return x.clone()
    xg = grouped(x, gran, group)
    s, z = params(xg, bits, scheme, clip, clipmode, rmode)
    qmin, qmax = qrange(bits, scheme)
    v = torch.clamp(round_mode(xg / s, rmode) + z, qmin, qmax)
    return ((v - z) * s).reshape(x.shape)


def ste_grad(x, g, bits, scheme, gran, group, clip, clipmode, rmode, ste):
    """d/dx sum(Q(x) * g) with the straight-through estimator, via autograd."""
    xv = x.clone().requires_grad_(True)
    with torch.no_grad():
        q = fake(x, bits, scheme, gran, group, clip, clipmode, rmode)
        xg = grouped(x, gran, group)
        s, z = params(xg, bits, scheme, clip, clipmode, rmode)
        qmin, qmax = qrange(bits, scheme)
        u = xg / s + z  # before rounding
        keep = ((u >= qmin) & (u <= qmax)).reshape(x.shape)
    if ste == STE_ID:
        y = xv + (q - xv).detach()
    else:
        y = torch.where(keep, xv, xv.detach()) + (q - xv).detach()
    assert torch.equal(y.detach(), q)
    (y * g).sum().backward()
    return xv.grad


def inputs():
    gen = torch.Generator().manual_seed(20250213)
    out = []
    # A: 8 x 48 Gaussian, outlier columns 5 and 30 (x20), a constant row, an all-zero row
    a = torch.randn(8, 48, generator=gen, dtype=F32)
    a[:, 5] *= 20
    a[:, 30] *= 20
    a[3, :] = 0.7
    a[6, :] = 0.0
    out.append(a)
    # B: 5 x 32 uniform in [-3, 5) (asymmetric range), one all-positive row
    b = torch.rand(5, 32, generator=gen, dtype=F32) * 8 - 3
    b[2] = b[2].abs() + 1
    out.append(b)
    # C: 3 x 64 heavy tails (Student t, 3 dof) with one outlier column
    z = torch.randn(3, 64, generator=gen, dtype=F32)
    chi = (torch.randn(3, 64, 3, generator=gen, dtype=F32) ** 2).sum(-1)
    c = z / torch.sqrt(chi / 3)
    c[:, 17] *= 30
    out.append(c)
    # D: 4 x 32 activations after a ReLU-like map (non-negative, many zeros)
    d = torch.relu(torch.randn(4, 32, generator=gen, dtype=F32)) * 3
    out.append(d)
    # E: 2 x 16 on a 1/8 grid in [-1.75, 1.75]: exact ties for several specs
    e = (torch.randint(-14, 15, (2, 16), generator=gen).to(F32)) / 8
    e[0, 0] = 1.75
    e[1, 0] = -1.75
    out.append(e)
    return out


GROUPS = [16, 16, 32, 16, 8]  # a group size that divides each input's columns


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/quant_torch.bin"
    torch.set_num_threads(1)
    xs = inputs()
    # Sanity: torch's float32 division and rounding are IEEE (compare with numpy).
    xa = xs[0]
    sa = t32(0.37)
    assert np.array_equal((xa / sa).numpy(), xa.numpy() / np.float32(0.37))
    assert np.array_equal(torch.round(xa / sa).numpy(), np.rint(xa.numpy() / np.float32(0.37)))

    cases = []
    k = 0
    for scheme, clipmode in [(SYM, CODE), (ASYM, CODE), (ASYM, PAPER)]:
        for gran in (TENSOR, ROW, GROUP):
            for bits in (2, 3, 4, 8):
                for clip in (1.0, 0.95, 0.9):
                    for rmode in (EVEN, AWAY):
                        # every spec on the tie grid E and on one of A..D in turn
                        for inp in (k % 4, 4):
                            cases.append((inp, bits, scheme, gran, GROUPS[inp], clipmode, rmode,
                                          STE_ID, clip, False))
                        k += 1
    # identity (16 bits) and 1-bit asym
    cases.append((0, 16, ASYM, ROW, 16, CODE, EVEN, STE_ID, 1.0, False))
    cases.append((1, 1, ASYM, ROW, 16, CODE, EVEN, STE_ID, 0.9, False))
    cases.append((2, 1, ASYM, GROUP, 32, PAPER, AWAY, STE_ID, 1.0, False))
    # STE gradients: identity and clipped (c < 1 so that some elements are clipped)
    cases.append((0, 4, ASYM, ROW, 16, CODE, EVEN, STE_ID, 0.9, True))
    cases.append((0, 4, ASYM, ROW, 16, CODE, EVEN, STE_CLIP, 0.9, True))
    cases.append((2, 3, SYM, GROUP, 32, CODE, AWAY, STE_CLIP, 0.95, True))

    gen = torch.Generator().manual_seed(7)
    blob = bytearray()
    blob += b"RSQZFIX\0" + struct.pack("<III", 1, len(xs), len(cases))
    for x in xs:
        blob += struct.pack("<II", *x.shape) + x.contiguous().numpy().astype("<f4").tobytes()
    nclipped = 0
    for inp, bits, scheme, gran, group, clipmode, rmode, ste, clip, grad in cases:
        x = xs[inp]
        y = fake(x, bits, scheme, gran, group, clip, clipmode, rmode)
        assert y.dtype == F32 and torch.isfinite(y).all()
        blob += struct.pack("<8i", inp, bits, scheme, gran, group, clipmode, rmode, ste)
        blob += struct.pack("<f", clip) + struct.pack("<I", 1 if grad else 0)
        blob += y.numpy().astype("<f4").tobytes()
        if grad:
            g = torch.randn(x.shape, generator=gen, dtype=F32)
            dx = ste_grad(x, g, bits, scheme, gran, group, clip, clipmode, rmode, ste)
            nclipped += int((dx == 0).sum()) if ste == STE_CLIP else 0
            blob += g.numpy().astype("<f4").tobytes() + dx.numpy().astype("<f4").tobytes()
    assert nclipped > 0, "the clipped-STE cases should clip something"
    with open(path, "wb") as f:
        f.write(bytes(blob))
    print(f"{path}: {len(xs)} inputs, {len(cases)} cases, {len(blob)} bytes, "
          f"{nclipped} gradients masked by the clipped STE; sign*floor(|v|+.5) would differ "
          f"from exact half-away on {NAIVE_DIFF[0]} values")


if __name__ == "__main__":
    main()
