"""Independent float64 reference forward pass for the Llama family (llama, qwen2, qwen3).

Written from the GGUF / llama.cpp / Hugging Face semantics, not from the LeoAM C++ engine, so that
the engine's logits can be checked against it (compare_forward.py). Runs on CPU in float64 with
PyTorch (Debian's python3-torch; run with /usr/bin/python3).

Semantics implemented:
  x = token_embd[ids]
  per layer:  h = x + Wo . attn(rmsnorm(x) * attn_norm)
              x = h + down(silu(gate(y)) * up(y)),  y = rmsnorm(h) * ffn_norm
  logits = output(rmsnorm(x) * output_norm)     (output = token_embd when output.weight is absent)
  attention: q = Wq y (+bq), k = Wk y (+bk), v = Wv y (+bv)   (biases: qwen2)
             qwen3: q, k RMS-normalised per head with attn_q_norm / attn_k_norm [head_dim], before rope
             rope on q and k at positions 0..n-1:
               llama: "normal" rope, rotates adjacent pairs (x[2i], x[2i+1])
               qwen2/qwen3: "neox" rope, rotates (x[i], x[i + n_rot/2])
               theta_i = pos * base^(-2i/n_rot) / rope_freqs[i]  (rope_freqs.weight: Llama-3 scaling)
               dims >= n_rot (rope.dimension_count) are not rotated
             causal softmax(q.k / sqrt(head_dim)) v, GQA: head h reads kv head h // (n_head / n_head_kv)
"""

import math

import numpy as np
import torch

from gguf_reader import GGUFFile

ROPE_NORMAL = "normal"   # adjacent pairs (llama.cpp GGUF convention for llama)
ROPE_NEOX = "neox"       # halves (HF / qwen)

_ARCH_ROPE = {"llama": ROPE_NORMAL, "qwen2": ROPE_NEOX, "qwen3": ROPE_NEOX}


class Config:
    def __init__(self, g):
        arch = g.get("general.architecture")
        if arch not in _ARCH_ROPE:
            raise ValueError(f"unsupported architecture {arch!r}")
        self.arch = arch

        def key(name, default=None):
            v = g.get(f"{arch}.{name}", default)
            if v is None:
                raise ValueError(f"missing metadata {arch}.{name}")
            return v

        self.dim = int(key("embedding_length"))
        self.n_layer = int(key("block_count"))
        self.n_ff = int(key("feed_forward_length"))
        self.n_head = int(key("attention.head_count"))
        self.n_head_kv = int(key("attention.head_count_kv", self.n_head))
        self.head_dim_k = int(key("attention.key_length", self.dim // self.n_head))
        self.head_dim_v = int(key("attention.value_length", self.head_dim_k))
        self.rms_eps = float(key("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(key("rope.freq_base", 10000.0))
        self.n_rot = int(key("rope.dimension_count", self.head_dim_k))
        self.rope_type = _ARCH_ROPE[arch]
        scaling = g.get(f"{arch}.rope.scaling.type", "none")
        factor = float(g.get(f"{arch}.rope.scaling.factor", 1.0))
        # Llama-3 scaling arrives as the rope_freqs.weight tensor; other schemes are not modelled here
        # and must not be silently ignored.
        if scaling not in ("none", "llama3") and factor != 1.0:
            raise ValueError(f"rope scaling {scaling!r} (factor {factor}) not supported by the reference")
        if self.n_head % self.n_head_kv:
            raise ValueError("head_count must be a multiple of head_count_kv")
        if self.n_rot % 2 or self.n_rot > self.head_dim_k:
            raise ValueError(f"bad rope.dimension_count {self.n_rot}")


class Model:
    """Weights of a GGUF model, dequantized to float64 torch tensors."""

    def __init__(self, path):
        g = GGUFFile(path)
        self.cfg = c = Config(g)

        def t(name):
            return torch.from_numpy(g.tensor(name, np.float64))

        def opt(name):
            return t(name) if g.has_tensor(name) else None

        self.tok_embd = t("token_embd.weight")                   # (vocab, dim)
        self.vocab = self.tok_embd.shape[0]
        self.output_norm = t("output_norm.weight")
        self.output = opt("output.weight")
        if self.output is None:
            self.output = self.tok_embd                            # tied embeddings
        self.rope_freqs = opt("rope_freqs.weight")                 # (n_rot/2,) Llama-3 scaling
        if self.rope_freqs is not None and self.rope_freqs.numel() != c.n_rot // 2:
            raise ValueError(f"rope_freqs has {self.rope_freqs.numel()} entries, want {c.n_rot // 2}")
        self.layers = []
        for i in range(c.n_layer):
            p = f"blk.{i}."
            L = {n: t(p + n + ".weight") for n in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
            for n in ("attn_q", "attn_k", "attn_v"):
                L[n + "_b"] = opt(p + n + ".bias")
            for n in ("attn_q_norm", "attn_k_norm"):
                L[n] = opt(p + n + ".weight")
            self._check_layer(i, L)
            self.layers.append(L)

    def _check_layer(self, i, L):
        c = self.cfg
        want = {
            "attn_q": (c.n_head * c.head_dim_k, c.dim), "attn_k": (c.n_head_kv * c.head_dim_k, c.dim),
            "attn_v": (c.n_head_kv * c.head_dim_v, c.dim), "attn_output": (c.dim, c.n_head * c.head_dim_v),
            "ffn_gate": (c.n_ff, c.dim), "ffn_up": (c.n_ff, c.dim), "ffn_down": (c.dim, c.n_ff),
        }
        for n, shape in want.items():
            if tuple(L[n].shape) != shape:
                raise ValueError(f"blk.{i}.{n}: shape {tuple(L[n].shape)}, want {shape}")
        if c.arch == "qwen3" and (L["attn_q_norm"] is None or L["attn_k_norm"] is None):
            raise ValueError(f"blk.{i}: qwen3 needs attn_q_norm / attn_k_norm")


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_angles(cfg, n_pos, rope_freqs=None, pos0=0):
    """(n_pos, n_rot/2) rotation angles."""
    i = torch.arange(cfg.n_rot // 2, dtype=torch.float64)
    inv_freq = cfg.rope_base ** (-2.0 * i / cfg.n_rot)
    if rope_freqs is not None:
        inv_freq = inv_freq / rope_freqs
    pos = torch.arange(pos0, pos0 + n_pos, dtype=torch.float64)
    return pos[:, None] * inv_freq[None, :]


def apply_rope(x, angles, rope_type, n_rot):
    """x: (n_pos, n_heads, head_dim); rotates the first n_rot dims of each head."""
    cos = torch.cos(angles)[:, None, :]
    sin = torch.sin(angles)[:, None, :]
    out = x.clone()
    if rope_type == ROPE_NORMAL:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    else:
        half = n_rot // 2
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    return out


def forward(model, token_ids, dtype=torch.float64):
    """Causal forward pass; returns logits of shape (n, vocab) for every position.

    dtype is the compute precision (float64 for the ground truth; float32 only to measure how far an
    fp32 implementation of the same maths lands from it, which calibrates compare_forward's tolerance).
    """
    c = model.cfg

    def W(t):
        return None if t is None else t.to(dtype)
    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("empty prompt")
    if int(ids.min()) < 0 or int(ids.max()) >= model.vocab:
        raise ValueError("token id out of range")
    n = ids.numel()
    x = W(model.tok_embd)[ids]                                     # (n, dim)
    angles = rope_angles(c, n, model.rope_freqs).to(dtype)
    group = c.n_head // c.n_head_kv
    scale = 1.0 / math.sqrt(c.head_dim_k)
    causal = torch.ones(n, n, dtype=torch.bool).triu(1)           # True above the diagonal = masked
    for L in model.layers:
        y = rms_norm(x, W(L["attn_norm"]), c.rms_eps)
        q = y @ W(L["attn_q"]).T
        k = y @ W(L["attn_k"]).T
        v = y @ W(L["attn_v"]).T
        if L["attn_q_b"] is not None:
            q = q + W(L["attn_q_b"])
        if L["attn_k_b"] is not None:
            k = k + W(L["attn_k_b"])
        if L["attn_v_b"] is not None:
            v = v + W(L["attn_v_b"])
        q = q.view(n, c.n_head, c.head_dim_k)
        k = k.view(n, c.n_head_kv, c.head_dim_k)
        v = v.view(n, c.n_head_kv, c.head_dim_v)
        if L["attn_q_norm"] is not None:
            q = rms_norm(q, W(L["attn_q_norm"]), c.rms_eps)
        if L["attn_k_norm"] is not None:
            k = rms_norm(k, W(L["attn_k_norm"]), c.rms_eps)
        q = apply_rope(q, angles, c.rope_type, c.n_rot)
        k = apply_rope(k, angles, c.rope_type, c.n_rot)
        # GQA: query head h uses kv head h // group.
        k = k.repeat_interleave(group, dim=1)                      # (n, n_head, hd)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) * scale       # (n_head, n, n)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        attn = torch.einsum("hqk,khd->qhd", probs, v).reshape(n, c.n_head * c.head_dim_v)
        h = x + attn @ W(L["attn_output"]).T
        y = rms_norm(h, W(L["ffn_norm"]), c.rms_eps)
        ff = torch.nn.functional.silu(y @ W(L["ffn_gate"]).T) * (y @ W(L["ffn_up"]).T)
        x = h + ff @ W(L["ffn_down"]).T
    x = rms_norm(x, W(model.output_norm), c.rms_eps)
    return (x @ W(model.output).T).numpy()


def greedy(model, prompt_ids, n_new, stop_id=None):
    """Greedy continuation, recomputing the full prefix each step (simple and obviously causal)."""
    ids = list(prompt_ids)
    out = []
    for _ in range(n_new):
        nxt = int(np.argmax(forward(model, ids)[-1]))
        if stop_id is not None and nxt == stop_id:
            break
        out.append(nxt)
        ids.append(nxt)
    return out


def _main():
    import argparse
    ap = argparse.ArgumentParser(description="float64 reference logits of a GGUF Llama-family model")
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--logits-out", help="write float64 little-endian logits [n, vocab] here")
    ap.add_argument("--greedy", type=int, default=0, help="also print this many greedy tokens")
    a = ap.parse_args()
    m = Model(a.model)
    ids = [int(s) for s in a.prompt_ids.split(",") if s.strip()]
    logits = forward(m, ids)
    if a.logits_out:
        logits.astype("<f8").tofile(a.logits_out)
    print("argmax per position:", logits.argmax(-1).tolist())
    if a.greedy:
        print("greedy:", greedy(m, ids, a.greedy))


if __name__ == "__main__":
    _main()
