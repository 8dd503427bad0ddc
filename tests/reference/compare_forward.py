"""Cross-check of the C++ engine's logits against the independent float64 reference.

For every architecture preset x weight dtype, leoam-synth writes a random-weight GGUF; leoam-run
computes logits for every position of a seeded random prompt: whole-prompt prefill, prefill in chunks
of 37 tokens, and one token at a time (--prefill_chunk 1, the decode path); llama_reference.py the
same logits in float64. Prints a table; exits 1 if any case is out of tolerance.

  /usr/bin/python3 tests/reference/compare_forward.py --synth build/.../leoam-synth --run build/.../leoam-run

Metrics, per case (over all positions):
  max_abs  max |ours - ref|
  max_rel  max over positions of max|ours - ref| / max|ref| (error relative to the row's logit scale)
  top1     fraction of positions where argmax(ours) == argmax(ref)
  fp32     max_rel of the reference's own maths run in float32 instead of float64: the noise floor that
           any correct fp32 implementation sits at (shown for context; not a pass criterion)
  sens     smallest max_rel of the reference with one plausible bug planted (wrong rope layout, no
           rope_freqs, no qkv bias, no qk norm, wrong GQA head mapping, as applicable): must be far
           above the tolerance, or the case proves nothing
"""

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402
from reference_common import in_ci, shared_dir, shared_path  # noqa: E402

PRESETS = ["tiny-llama", "tiny-qwen2", "tiny-qwen3"]
DTYPES = ["f32", "f16", "bf16", "q8_0"]
STORIES = "models/stories260K.gguf"

# Tolerance on max_rel, per weight dtype. The engine dequantizes F16/BF16/Q8_0 weights exactly to
# fp32 (every such value is representable in fp32) and computes in fp32 with fp32 activations, and
# the reference uses the very same dequantized values, so for every dtype the only expected
# difference is fp32 rounding (matmuls, norms, softmax, rope). Its size is the "fp32" column: the
# reference's own maths in float32 lands at ~1e-6 of the logit scale on these models (2-3e-6 on
# stories260K and tied output), and a correct engine sits at the same level whatever its summation
# order. 5e-5 is >15x above that floor, yet low enough to see small semantic slips: on tiny-llama a
# 10x wrong RMSNorm eps moves logits by ~1.5e-4 and a 1% wrong rope base by ~9e-3, while a wrong
# rope layout, a dropped bias / qk-norm / rope_freqs or a wrong GQA mapping move them by 2e-2..1
# (the "sens" column). The dtype does not change this error model, hence one value for all; were
# activations quantized (llama.cpp's q8_0 x q8_1 dot products) or GEMMs run in TF32 / bf16, errors
# would be ~1e-3..1e-2 and this test would rightly flag it as a precision change.
TOLERANCE = {"f32": 5e-5, "f16": 5e-5, "bf16": 5e-5, "q8_0": 5e-5}
# How leoam-run runs the prompt: all at once (the default chunk exceeds the prompt), in chunks of 37
# (prefill that continues from a KV cache at a non-page-aligned position), one token at a time.
MODES = [("prefill", []), ("chunk37", ["--prefill_chunk", "37"]), ("chunk1", ["--prefill_chunk", "1"])]
# Each case must be able to see the bugs in mutations(): their max_rel must exceed this many times
# the tolerance.
SENSITIVITY_FACTOR = 10.0
# A top-1 disagreement is a failure unless the reference's top-2 gap there is below this many times
# the case's tolerance times the row's logit scale (a genuine near-tie that fp32 noise may flip).
NEAR_TIE_FACTOR = 2.0


def run_cmd(argv, timeout=300):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"command timed out after {timeout} s: {' '.join(argv)[:300]}")
    if p.returncode != 0:
        raise RuntimeError(f"command failed (rc {p.returncode}): {' '.join(argv)[:300]}\n"
                           f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def synth_help(synth):
    p = subprocess.run([synth, "--help"], capture_output=True, text=True, timeout=60)
    return p.stdout + p.stderr


def engine_logits(run, model, ids, vocab, out, extra):
    argv = [run, "--model", model, "--prompt_ids", ",".join(map(str, ids)), "--max_tokens", "0",
            "--logits_out", out] + extra
    run_cmd(argv)
    a = np.fromfile(out, dtype="<f4")
    if a.size != len(ids) * vocab:
        raise RuntimeError(f"{out}: {a.size} floats, want {len(ids)} x {vocab} = {len(ids) * vocab}")
    return a.reshape(len(ids), vocab).astype(np.float64)


def mutations(m):
    """Plausible engine bugs, as reference variants: each must move the logits far beyond the
    tolerance, or the case could not catch it (checked per case, the "sens" column)."""
    out = {}
    wrong_rope = copy.deepcopy(m)
    wrong_rope.cfg.rope_type = ref.ROPE_NEOX if m.cfg.rope_type == ref.ROPE_NORMAL else ref.ROPE_NORMAL
    out["rope layout"] = wrong_rope
    if m.rope_freqs is not None:
        no_freqs = copy.deepcopy(m)
        no_freqs.rope_freqs = None
        out["no rope_freqs"] = no_freqs
    if any(L["attn_q_b"] is not None for L in m.layers):
        no_bias = copy.deepcopy(m)
        for L in no_bias.layers:
            L["attn_q_b"] = L["attn_k_b"] = L["attn_v_b"] = None
        out["no qkv bias"] = no_bias
    if any(L["attn_q_norm"] is not None for L in m.layers):
        no_norm = copy.deepcopy(m)
        for L in no_norm.layers:
            L["attn_q_norm"] = L["attn_k_norm"] = None
        out["no qk norm"] = no_norm
    c = m.cfg
    if c.n_head != c.n_head_kv:
        # GQA bug: query head h reading kv head h % n_kv instead of h // group. Expressed as a model
        # the reference runs: move query head h (its Wq rows, bias and Wo columns) to the slot
        # s = (h % n_kv) * group + h // n_kv, whose kv head under the correct mapping is h % n_kv.
        group = c.n_head // c.n_head_kv
        slot_of = [(h % c.n_head_kv) * group + h // c.n_head_kv for h in range(c.n_head)]
        src = [0] * c.n_head
        for h, s_ in enumerate(slot_of):
            src[s_] = h
        q_idx = torch.tensor([h * c.head_dim_k + j for h in src for j in range(c.head_dim_k)])
        o_idx = torch.tensor([h * c.head_dim_v + j for h in src for j in range(c.head_dim_v)])
        gqa = copy.deepcopy(m)
        for L in gqa.layers:
            L["attn_q"] = L["attn_q"][q_idx]
            if L["attn_q_b"] is not None:
                L["attn_q_b"] = L["attn_q_b"][q_idx]
            L["attn_output"] = L["attn_output"][:, o_idx]
        out["gqa mapping"] = gqa
    return out


def metrics(ours, want):
    scale = np.abs(want).max(-1)
    row_err = np.abs(ours - want).max(-1)
    rel = row_err / scale
    top_ours, top_ref = ours.argmax(-1), want.argmax(-1)
    srt = np.sort(want, axis=-1)
    gap = (srt[:, -1] - srt[:, -2]) / scale
    return {
        "max_abs": float(row_err.max()), "max_rel": float(rel.max()), "worst_pos": int(rel.argmax()),
        "top1": float((top_ours == top_ref).mean()), "mismatch": np.nonzero(top_ours != top_ref)[0],
        "gap": gap, "rel_rows": rel, "first_bad": None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synth", required=True, help="path of leoam-synth")
    ap.add_argument("--run", required=True, help="path of leoam-run")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--n-prompt", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workdir", help="keep models and logits here (default: a temp dir, removed)")
    a = ap.parse_args()

    help_text = synth_help(a.synth)
    cases = [(p, d, []) for p in a.presets.split(",") for d in a.dtypes.split(",")]
    # Extra features on top of the presets, when the synth tool offers them: Llama-3 rope scaling
    # (rope_freqs.weight) on a llama model, and tied output on a qwen2 model.
    for flag, preset in (("llama3_rope_scaling", "tiny-llama"), ("tied_output", "tiny-qwen2")):
        if flag not in help_text:
            print(f"NOTE: leoam-synth --help names no --{flag}; that feature is not exercised")
            continue
        if preset in a.presets.split(","):
            cases += [(preset, d, [f"--{flag}=true"]) for d in ("f32", "q8_0") if d in a.dtypes.split(",")]

    tmp = tempfile.TemporaryDirectory() if not a.workdir else None
    work = a.workdir or tmp.name
    os.makedirs(work, exist_ok=True)
    rows, failures = [], []
    # A real trained model too, when the shared data is there (it is optional for this test).
    stories = shared_path(STORIES)
    if stories:
        cases.append(("stories260K", "f32", None))
    elif in_ci():   # CI must have the shared data
        failures.append(f"shared test data {STORIES} not found under {shared_dir()} (CI=true)")
    else:
        print(f"NOTE: {STORIES} not found under {shared_dir()}; only synthetic models checked")
    for preset, dtype, extra in cases:
        if extra is None:   # an existing model file
            tag, model, extra = preset, stories, []
        else:
            tag = preset + "".join("+" + f.lstrip("-").split("=")[0] for f in extra)
            model = os.path.join(work, f"{tag}-{dtype}".replace("+", "_") + ".gguf")
        name = os.path.join(work, f"{tag}-{dtype}".replace("+", "_"))
        # Seed from the case's identity, so a case reproduces whatever else is selected.
        seed = a.seed + zlib.crc32(f"{tag}/{dtype}".encode()) % 100000
        if model != stories:
            try:
                run_cmd([a.synth, "--preset", preset, "--dtype", dtype, "--seed", str(seed),
                         "--out", model] + extra)
            except RuntimeError as e:
                failures.append(f"{tag} {dtype}: {e}")
                rows.append((tag, dtype, "synth", "-", "-", "-", "-", "-", "-", "ERROR"))
                continue
        m = ref.Model(model)
        if "+llama3_rope_scaling" in tag and m.rope_freqs is None:
            failures.append(f"{tag} {dtype}: synth wrote no rope_freqs.weight")
        if "+tied_output" in tag and m.output is not m.tok_embd:
            failures.append(f"{tag} {dtype}: synth wrote an output.weight")
        ids = np.random.default_rng(seed).integers(0, m.vocab, a.n_prompt).tolist()
        want = ref.forward(m, ids)
        floor = metrics(ref.forward(m, ids, torch.float32), want)["max_rel"]
        tol = TOLERANCE[dtype]
        sens = {k: metrics(ref.forward(v, ids), want)["max_rel"] for k, v in mutations(m).items()}
        blind = [k for k, v in sens.items() if v < SENSITIVITY_FACTOR * tol]
        if blind:
            failures.append(f"{tag} {dtype}: case cannot detect {blind} (max_rel {sens}); "
                            "the synthetic model or prompt is not discriminative")
        sens_min = min(sens.values())
        for mode, flags in MODES:
            out = f"{name}-{mode}.bin"
            try:
                ours = engine_logits(a.run, model, ids, m.vocab, out, flags)
            except RuntimeError as e:
                failures.append(f"{tag} {dtype} {mode}: {e}")
                rows.append((tag, dtype, mode, "-", "-", "-", "-", f"{floor:.1e}", f"{sens_min:.1e}", "ERROR"))
                continue
            r = metrics(ours, want)
            bad = [int(p) for p in r["mismatch"] if r["gap"][p] >= NEAR_TIE_FACTOR * tol]
            ok = r["max_rel"] <= tol and not bad
            if not ok:
                over = np.nonzero(r["rel_rows"] > tol)[0]
                failures.append(
                    f"{tag} {dtype} {mode}: max_rel {r['max_rel']:.3g} at position {r['worst_pos']} "
                    f"(tol {tol:g}); first position over tol: {int(over[0]) if len(over) else '-'} "
                    f"({len(over)} of {len(ids)}); top-1 mismatches beyond near-ties at {bad[:10]}")
            rows.append((tag, dtype, mode, f"{r['max_abs']:.2e}", f"{r['max_rel']:.2e}",
                         f"{r['top1'] * 100:.1f}%", f"{len(r['mismatch'])}", f"{floor:.1e}", f"{sens_min:.1e}",
                         "ok" if ok else "FAIL"))
    hdr = ("model", "dtype", "mode", "max_abs", "max_rel", "top1", "n_diff", "fp32", "sens", "status")
    widths = [max(len(str(x[j])) for x in rows + [hdr]) for j in range(len(hdr))]
    print(f"reference forward check: {a.n_prompt}-token random prompts, float64 reference, "
          f"tolerance on max_rel: {TOLERANCE}")
    for row in [hdr] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    if failures:
        print("\nFAILURES:")
        for f in failures:
            print("  " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
