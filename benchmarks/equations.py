"""PSA and LESA written from the equations of their official code (mmseg ships neither): DeLightCMU/PSA
network/PSA.py (PSA_p, PSA_s) and LESA_classification lib/models/LESA.py. In float64, one step per line, 1×1
convs as matrices and every BatchNorm written out, reading a module's parameters by name; the fidelity
table and tests/modules/test_official_equations.py compare our modules against these.
"""
import torch


def mat(conv):
    """A 1×1 conv's weight as a matrix (out × in)."""
    return conv.weight[:, :, 0, 0]


def conv1x1(conv, t):
    """t: B×C×N -> B×C'×N, with the bias when there is one."""
    out = torch.einsum("oc,bcn->bon", mat(conv), t)
    return out if conv.bias is None else out + conv.bias[None, :, None]


def bn(norm, t, dim=1):
    """Eval-mode BatchNorm along `dim`, written out."""
    shape = [1] * t.dim()
    shape[dim] = -1
    v = lambda p: p.view(shape)  # noqa: E731
    return (t - v(norm.running_mean)) / torch.sqrt(v(norm.running_var) + norm.eps) * v(norm.weight) + v(norm.bias)


def psa_reference(m, x):
    """PSA_p / PSA_s of the official code: (output, spatial gate B×N, channel gate B×C)."""
    b, c, h, w = x.shape
    t = x.flatten(2)

    def channel_gate(t):  # "spatial_pool" upstream: softmax over positions of Wq·x, pooled values, bottleneck
        mask = torch.softmax(conv1x1(m.ch_q, t), dim=2)  # B×1×N
        ctx = conv1x1(m.ch_v, t) @ mask.transpose(1, 2)  # B×C/2×1
        if m.mode == "sequential":  # conv C/2 -> C/8, LayerNorm over the C/8 values, ReLU, conv -> C
            z = conv1x1(m.ch_z[0], ctx)
            ln = m.ch_z[1]
            mu, var = z.mean(dim=1, keepdim=True), z.var(dim=1, unbiased=False, keepdim=True)
            z = (z - mu) / torch.sqrt(var + ln.eps) * ln.weight.view(1, -1, 1) + ln.bias.view(1, -1, 1)
            z = conv1x1(m.ch_z[3], torch.relu(z))
        else:
            z = conv1x1(m.ch_z, ctx)
        return torch.sigmoid(z)[:, :, 0]  # B×C

    def spatial_gate(t):  # "channel_pool" upstream
        avg = conv1x1(m.sp_q, t).mean(dim=2, keepdim=True).transpose(1, 2)  # B×1×C/2
        theta = conv1x1(m.sp_v, t)  # B×C/2×N
        if m.mode == "parallel":
            return torch.sigmoid(torch.softmax(avg @ theta, dim=2))[:, 0]
        return torch.sigmoid(avg @ torch.softmax(theta, dim=2))[:, 0]

    ch = channel_gate(t)
    if m.mode == "parallel":
        sp = spatial_gate(t)
        out = t * ch[:, :, None] + t * sp[:, None, :]
    else:
        t1 = t * ch[:, :, None]
        sp = spatial_gate(t1)
        out = t1 * sp[:, None, :]
    return out.view(b, c, h, w), sp, ch


def lesa_reference(m, x):
    """The official LESA forward in eval mode, every BatchNorm (shifts included) and offset written out.
    Returns (output, attention B×heads×N×N)."""
    b, c, h, w = x.shape
    n, g, dq, dv = h * w, m.heads, m.qk, m.v
    unary = m.unary(x)  # grouped 3×3, 1×1, BN: plain layers, checked through the output
    qkv = bn(m.qkv_norm, conv1x1(m.qkv, x.flatten(2))).view(b, g, 2 * dq + dv, n)
    q, k, v = qkv[:, :, :dq], qkv[:, :, dq : 2 * dq], qkv[:, :, 2 * dq :]
    qk = torch.einsum("bgci,bgcj->bgij", q, k)
    if m.position:
        emb = torch.empty(2 * dq + dv, n, n, dtype=x.dtype)
        for i in range(n):
            for j in range(n):
                emb[:, i, j] = m.relative[:, i - j + n - 1]
        eq, ek, ev = emb[:dq], emb[dq : 2 * dq], emb[2 * dq :]
        qr = torch.einsum("bgci,cij->bgij", q, eq)
        kr = torch.einsum("bgci,cij->bgij", k, ek).transpose(2, 3)
        stacked = torch.cat([qk, qr, kr], dim=1)  # term-major channels: t·g + head
        logits = bn(m.logit_norm, stacked).view(b, 3, g, n, n).sum(1)
    else:
        logits = bn(m.logit_norm, qk)
    att = torch.softmax(logits, dim=3)
    sv = torch.einsum("bgij,bgcj->bgci", att, v)
    if m.position:
        sve = torch.einsum("bgij,cij->bgci", att, ev)
        pair = torch.stack([sv, sve], dim=3).reshape(b, 2 * c, n)  # channel 2m: sv of m, 2m+1: sve of m
        binary = bn(m.out_norm, pair).view(b, c, 2, n).sum(2)
    else:
        binary = bn(m.out_norm, sv.reshape(b, c, n))
    binary = binary.view(b, c, h, w)
    gate = m.gate(torch.cat([unary, binary], dim=1))
    return unary + gate * binary, att
