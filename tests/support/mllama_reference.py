"""Plain-PyTorch reference for Llama 3.2 Vision's language side (Hugging Face `mllama`), written
from transformers' models/mllama/modeling_mllama.py (_prepare_cross_attention_mask,
MllamaTextRMSNorm, MllamaTextCrossAttention, MllamaTextSelfAttention, MllamaTextMLP,
MllamaSelfAttentionDecoderLayer, MllamaCrossAttentionDecoderLayer, MllamaRotaryEmbedding,
MllamaTextModel, MllamaForCausalLM, MllamaForConditionalGeneration) and
modeling_rope_utils.py's _compute_llama3_parameters; eager attention, float32 softmax. The
vision tower is not modelled: conditional_forward takes its output. Weights are read by the
names MllamaForConditionalGeneration saves on disk."""
import json
import math
import os

import torch
import torch.nn.functional as F

from tensors import save

# HF defaults (configuration_mllama.py) for fields a text_config may leave out.
TEXT_DEFAULTS = dict(rope_theta=500000.0, rope_scaling=None, rms_norm_eps=1e-5,
                     hidden_act="silu", cross_attention_layers=[3, 8, 13, 18, 23, 28, 33, 38])


def _get(cfg, key):
    return cfg.get(key, TEXT_DEFAULTS[key])


def num_vision_tokens(vision_config):
    # MllamaVisionModel.num_patches: the class token is one of them.
    return (vision_config["image_size"] // vision_config["patch_size"]) ** 2 + 1


def prepare_cross_attention_mask(mask, num_vision_tokens, dtype=torch.float32):
    """_prepare_cross_attention_mask: mask [b, text, images, tiles] of 1 (attend) / 0 ->
    (additive [b, 1, text, images * tiles * tokens], full_text_row_masked_out_mask [b, 1, text, 1]).
    A row with nothing to attend gets an all-zero additive row, so it attends every vision
    token (padding tiles included); only the cross layer's MLP output is zeroed for it."""
    b, text = mask.shape[:2]
    mask = mask.repeat_interleave(num_vision_tokens, dim=3).view(b, text, -1).unsqueeze(1)
    inverted = (1.0 - mask).to(dtype)
    mask = inverted.masked_fill(inverted.to(torch.bool), torch.finfo(dtype).min)
    full_row = (mask != torch.finfo(dtype).min).any(dim=-1).type_as(mask)[..., None]
    mask *= full_row
    return mask, full_row


def rms_norm(x, weight, eps):
    xf = x.to(torch.float32)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def inverse_frequencies(cfg):
    """The default rotary inverse frequencies, rescaled as _compute_llama3_parameters when
    rope_scaling's rope_type (or legacy `type`) is llama3; attention_factor is 1 for both."""
    dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    base = _get(cfg, "rope_theta")
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = _get(cfg, "rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    assert kind == "llama3", "rope_type %s is not modelled" % kind
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context = scaling["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(medium, smoothed, scaled)


def rotary(cfg, positions):
    # MllamaRotaryEmbedding.forward for positions [t]: cos, sin [1, t, head_dim].
    freqs = inverse_frequencies(cfg)[:, None] @ positions[None, :].float()
    emb = torch.cat((freqs.T, freqs.T), dim=-1)[None]
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, groups):
    b, kv, t, d = x.shape
    return x[:, :, None].expand(b, kv, groups, t, d).reshape(b, kv * groups, t, d)


def attend(q, k, v, mask):
    scores = q @ k.transpose(2, 3) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask[:, :, :, : k.shape[-2]]
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return weights @ v


def mlp(w, h):
    gate, up = F.linear(h, w("mlp.gate_proj.weight")), F.linear(h, w("mlp.up_proj.weight"))
    return F.linear(F.silu(gate) * up, w("mlp.down_proj.weight"))


def self_attention_layer(w, cfg, x, cos, sin, causal):
    b, t, d = x.shape
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps = d // heads, _get(cfg, "rms_norm_eps")
    h = rms_norm(x, w("input_layernorm.weight"), eps)
    q = F.linear(h, w("self_attn.q_proj.weight")).view(b, t, heads, hd).transpose(1, 2)
    k = F.linear(h, w("self_attn.k_proj.weight")).view(b, t, kv, hd).transpose(1, 2)
    v = F.linear(h, w("self_attn.v_proj.weight")).view(b, t, kv, hd).transpose(1, 2)
    cos, sin = cos[:, None], sin[:, None]
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    a = attend(q, repeat_kv(k, heads // kv), repeat_kv(v, heads // kv), causal)
    x = x + F.linear(a.transpose(1, 2).reshape(b, t, -1), w("self_attn.o_proj.weight"))
    return x + mlp(w, rms_norm(x, w("post_attention_layernorm.weight"), eps))


def cross_attention_layer(w, cfg, x, states, mask, full_row):
    """MllamaCrossAttentionDecoderLayer with MllamaTextCrossAttention (eager): no rotary,
    q_norm/k_norm per head over head_dim, keys and values from `states` (any shape that views
    to [b, -1, hidden]); full_row zeroes only the MLP branch."""
    b, t, d = x.shape
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps = d // heads, _get(cfg, "rms_norm_eps")
    h = rms_norm(x, w("input_layernorm.weight"), eps)
    q = F.linear(h, w("cross_attn.q_proj.weight")).view(b, t, heads, hd).transpose(1, 2)
    q = rms_norm(q, w("cross_attn.q_norm.weight"), eps)
    k = F.linear(states, w("cross_attn.k_proj.weight")).view(b, -1, kv, hd).transpose(1, 2)
    v = F.linear(states, w("cross_attn.v_proj.weight")).view(b, -1, kv, hd).transpose(1, 2)
    k = rms_norm(repeat_kv(k, heads // kv), w("cross_attn.k_norm.weight"), eps)
    a = attend(q, k, repeat_kv(v, heads // kv), mask)
    a = F.linear(a.transpose(1, 2).reshape(b, t, -1), w("cross_attn.o_proj.weight"))
    x = x + w("cross_attn_attn_gate").tanh() * a
    h = mlp(w, rms_norm(x, w("post_attention_layernorm.weight"), eps))
    if full_row is not None:
        h = full_row[:, 0] * h
    return x + w("cross_attn_mlp_gate").tanh() * h


def text_forward(p, cfg, input_ids, cross_attention_states=None, cross_attention_mask=None,
                 full_text_row_masked_out_mask=None):
    """MllamaForCausalLM.forward without a cache: logits [b, t, vocab_size]. `p` by the names
    below language_model. (model.embed_tokens.weight, model.layers.N..., lm_head.weight);
    `cross_attention_mask` the additive mask of prepare_cross_attention_mask. Without
    cross_attention_states the cross layers are skipped, as MllamaTextModel does with no cache."""
    assert _get(cfg, "hidden_act") == "silu"
    x = p["model.embed_tokens.weight"][input_ids]
    t = input_ids.shape[1]
    cos, sin = rotary(cfg, torch.arange(t))
    causal = torch.full((t, t), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)[None, None]
    cross = set(_get(cfg, "cross_attention_layers"))
    for i in range(cfg["num_hidden_layers"]):
        w = lambda n, i=i: p["model.layers.%d.%s" % (i, n)]
        if i not in cross:
            x = self_attention_layer(w, cfg, x, cos, sin, causal)
        elif cross_attention_states is not None:
            x = cross_attention_layer(w, cfg, x, cross_attention_states, cross_attention_mask,
                                      full_text_row_masked_out_mask)
    x = rms_norm(x, p["model.norm.weight"], _get(cfg, "rms_norm_eps"))
    return F.linear(x, p["lm_head.weight"]).float()


def project(p, vision_features, hidden_size):
    # multi_modal_projector, then MllamaForConditionalGeneration's reshape to
    # [b * images * tiles, tokens, hidden]; the cross layers view it as [b, -1, hidden].
    y = F.linear(vision_features, p["multi_modal_projector.weight"],
                 p["multi_modal_projector.bias"])
    return y.reshape(-1, vision_features.shape[-2], hidden_size)


def conditional_forward(p, cfg, input_ids, vision_features=None, cross_attention_mask=None):
    """MllamaForConditionalGeneration.forward given the vision model's output
    [b, images, tiles, tokens, vision_output_dim] instead of pixels: `p` and `cfg` as on disk
    (language_model.*, multi_modal_projector.*; the whole config.json)."""
    text = cfg["text_config"]
    states = None
    if vision_features is not None:
        assert vision_features.shape[-2] == num_vision_tokens(cfg["vision_config"])
        states = project(p, vision_features, text["hidden_size"])
    mask = full_row = None
    if cross_attention_mask is not None:
        mask, full_row = prepare_cross_attention_mask(
            cross_attention_mask, num_vision_tokens(cfg["vision_config"]), torch.float32)
    lm = {k[len("language_model."):]: v for k, v in p.items() if k.startswith("language_model.")}
    return text_forward(lm, text, input_ids, states, mask, full_row)


def in_memory_names(p):
    """On-disk names -> the layout of transformers' MllamaForConditionalGeneration since its
    _checkpoint_conversion_mapping (model.language_model.*, model.vision_model.*,
    model.multi_modal_projector.*, lm_head.weight)."""
    def rename(k):
        if k.startswith("language_model.model."):
            return "model.language_model." + k[len("language_model.model."):]
        if k.startswith("language_model.lm_head."):
            return k[len("language_model."):]
        return "model." + k
    return {rename(k): v for k, v in p.items()}


def tiny_config():
    text = dict(model_type="mllama_text_model", hidden_size=32, intermediate_size=64,
                num_hidden_layers=6, cross_attention_layers=[1, 4], num_attention_heads=4,
                num_key_value_heads=2, vocab_size=50, hidden_act="silu",
                max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-5,
                # head_dim 8: wavelengths 6.3, 63, 628, 6283 against 16 and 64 take all three
                # branches of the llama3 rescaling.
                rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=64),
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                dropout=0, torch_dtype="float32")
    # vision_output_dim is only the projector's input width here: the tower is not modelled,
    # so it need not equal hidden_size * (1 + len(intermediate_layers_indices)) as HF's would.
    vision = dict(model_type="mllama_vision_model", hidden_size=16, intermediate_size=32,
                  num_hidden_layers=2, num_global_layers=1, attention_heads=2, num_channels=3,
                  image_size=8, patch_size=4, max_num_tiles=2, vision_output_dim=24,
                  intermediate_layers_indices=[0, 1], norm_eps=1e-5, hidden_act="gelu",
                  supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]], torch_dtype="float32")
    # image_token_index = vocab_size as in the 11B folder: the token lives in the 8 extra rows.
    return dict(model_type="mllama", architectures=["MllamaForConditionalGeneration"],
                image_token_index=50, text_config=text, vision_config=vision,
                torch_dtype="float32")


def tiny_tensors(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.2
    t, v = config["text_config"], config["vision_config"]
    d, inter = t["hidden_size"], t["intermediate_size"]
    hd = d // t["num_attention_heads"]
    kvd = t["num_key_value_heads"] * hd
    gates = {1: (0.5, -0.7), 4: (-0.6, 0.8)}  # nonzero, so every branch reaches the logits
    p = {"language_model.model.embed_tokens.weight": r(t["vocab_size"] + 8, d)}
    for i in range(t["num_hidden_layers"]):
        l = "language_model.model.layers.%d." % i
        a = l + ("cross_attn." if i in t["cross_attention_layers"] else "self_attn.")
        p[a + "q_proj.weight"], p[a + "k_proj.weight"] = r(d, d), r(kvd, d)
        p[a + "v_proj.weight"], p[a + "o_proj.weight"] = r(kvd, d), r(d, d)
        if i in t["cross_attention_layers"]:
            p[a + "q_norm.weight"], p[a + "k_norm.weight"] = 1 + r(hd), 1 + r(hd)
            p[l + "cross_attn_attn_gate"] = torch.tensor([gates[i][0]])
            p[l + "cross_attn_mlp_gate"] = torch.tensor([gates[i][1]])
        p[l + "input_layernorm.weight"] = 1 + r(d)
        p[l + "post_attention_layernorm.weight"] = 1 + r(d)
        p[l + "mlp.gate_proj.weight"], p[l + "mlp.up_proj.weight"] = r(inter, d), r(inter, d)
        p[l + "mlp.down_proj.weight"] = r(d, inter)
    p["language_model.model.norm.weight"] = 1 + r(d)
    p["language_model.lm_head.weight"] = r(t["vocab_size"], d)
    p["multi_modal_projector.weight"] = r(d, v["vision_output_dim"])
    p["multi_modal_projector.bias"] = r(d)
    # A few of the tower's tensors, so a loader meets names it does not model.
    vh, patches = v["hidden_size"], num_vision_tokens(v)
    ratios, tiles = len(v["supported_aspect_ratios"]) + 1, v["max_num_tiles"]
    side = v["patch_size"]
    p["vision_model.patch_embedding.weight"] = r(vh, v["num_channels"], side, side)
    p["vision_model.class_embedding"] = r(vh)
    p["vision_model.gated_positional_embedding.embedding"] = r(patches, vh)
    p["vision_model.gated_positional_embedding.gate"] = r(1)
    p["vision_model.gated_positional_embedding.tile_embedding.weight"] = r(
        ratios, tiles * patches * vh)
    p["vision_model.pre_tile_positional_embedding.embedding.weight"] = r(ratios, tiles * vh)
    p["vision_model.pre_tile_positional_embedding.gate"] = r(1)
    p["vision_model.layernorm_pre.weight"], p["vision_model.layernorm_pre.bias"] = 1 + r(vh), r(vh)
    p["vision_model.transformer.layers.0.self_attn.q_proj.weight"] = r(vh, vh)
    return p


def write_tiny_folder(folder, seed=0):
    """A tiny random mllama folder in the on-disk layout (config.json, model.safetensors);
    returns (config, tensors)."""
    config = tiny_config()
    p = tiny_tensors(config, seed)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    save(p, os.path.join(folder, "model.safetensors"))
    return config, p


def _self_check():
    import tempfile
    from tensors import load

    with tempfile.TemporaryDirectory() as folder:
        config, written = write_tiny_folder(folder)
        p = load(os.path.join(folder, "model.safetensors"))
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
    assert p.keys() == written.keys() and all(torch.equal(p[k], written[k]) for k in p)
    text, vision = config["text_config"], config["vision_config"]
    assert p["language_model.model.embed_tokens.weight"].shape == (58, 32)
    assert "language_model.model.layers.1.self_attn.q_proj.weight" not in p

    tokens_per_tile = num_vision_tokens(vision)
    assert tokens_per_tile == 5
    g = torch.Generator().manual_seed(1)
    b, t, images, tiles = 2, 7, 2, 2
    ids = torch.randint(0, 58, (b, t), generator=g)
    features = torch.randn(b, images, tiles, tokens_per_tile, vision["vision_output_dim"],
                           generator=g)
    # Row 0: rows 0-1 precede the first image (fully masked); rows 2-3 see image 0 (both
    # tiles); rows 4-6 see image 1, whose tile 1 is padding. Row 1: every row sees image 0.
    mask = torch.zeros(b, t, images, tiles, dtype=torch.int64)
    mask[0, 2:4, 0] = 1
    mask[0, 4:, 1, 0] = 1
    mask[1, :, 0] = 1

    additive, full_row = prepare_cross_attention_mask(mask, tokens_per_tile, torch.float32)
    assert additive.shape == (b, 1, t, images * tiles * tokens_per_tile)
    assert full_row.shape == (b, 1, t, 1)
    assert full_row[0, 0, :, 0].tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert full_row[1].eq(1).all()
    assert additive[0, 0, :2].eq(0).all()  # fully masked rows attend everything
    lowest = torch.finfo(torch.float32).min
    for bi in range(b):
        for row in range(t):
            if full_row[bi, 0, row, 0] == 0:
                continue
            for s in range(images * tiles * tokens_per_tile):
                image, tile = divmod(s // tokens_per_tile, tiles)
                want = 0.0 if mask[bi, row, image, tile] else lowest
                assert additive[bi, 0, row, s].item() == want

    logits = conditional_forward(p, config, ids, features, mask)
    print("logits", tuple(logits.shape))
    assert logits.shape == (b, t, text["vocab_size"])
    assert torch.isfinite(logits).all()

    lm = {k[len("language_model."):]: v for k, v in p.items() if k.startswith("language_model.")}
    text_only = text_forward(lm, text, ids)
    assert torch.equal(conditional_forward(p, config, ids), text_only)
    assert not torch.allclose(logits, text_only, atol=1e-3)

    # Zero gates make the cross layers identities: the text-only logits, exactly.
    closed = dict(p)
    for i in text["cross_attention_layers"]:
        for gate in ("attn", "mlp"):
            closed["language_model.model.layers.%d.cross_attn_%s_gate" % (i, gate)] = torch.zeros(1)
    assert torch.equal(conditional_forward(closed, config, ids, features, mask), text_only)

    # A fully masked row still takes the attention branch (over every vision token): token 0
    # of row 0 sees only itself, yet other features move its logits ...
    other = features + torch.randn(features.shape, generator=g)
    moved = conditional_forward(p, config, ids, other, mask)
    assert not torch.allclose(moved[0, 0], logits[0, 0], atol=1e-4)
    # ... while its MLP branch is zeroed: with the attention gates closed, the fully masked
    # rows (and only they) get the text-only logits.
    attn_closed = dict(p)
    for i in text["cross_attention_layers"]:
        attn_closed["language_model.model.layers.%d.cross_attn_attn_gate" % i] = torch.zeros(1)
    a = conditional_forward(attn_closed, config, ids, features, mask)
    assert torch.equal(a[0, :2], text_only[0, :2])
    assert not torch.allclose(a[0, 2:], text_only[0, 2:], atol=1e-4)

    # Masked tokens weigh exactly nothing: image 1 is masked for every row of batch row 1.
    hidden = features.clone()
    hidden[1, 1] += 5
    assert torch.equal(conditional_forward(p, config, ids, hidden, mask)[1], logits[1])

    # Causal: a later token does not reach earlier logits.
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 58
    assert torch.allclose(conditional_forward(p, config, changed, features, mask)[:, :-1],
                          logits[:, :-1], atol=1e-6)

    # llama3 rescaling: the shortest wavelength kept, the longest two divided by the factor.
    plain = dict(text, rope_scaling=None)
    base, scaled = inverse_frequencies(plain), inverse_frequencies(text)
    assert torch.equal(scaled[0], base[0]) and torch.allclose(scaled[2:], base[2:] / 4)
    assert base[1] / 4 < scaled[1] < base[1]
    print("mllama reference self-check passed")


if __name__ == "__main__":
    _self_check()
