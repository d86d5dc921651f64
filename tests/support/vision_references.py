"""Plain-PyTorch references for vision encoders and connectors, written from transformers'
modeling_clip.py (CLIPVisionEmbeddings, CLIPAttention, CLIPMLP, CLIPEncoderLayer,
CLIPVisionTransformer) and modeling_llava.py (LlavaMultiModalProjector), taking weights by
name from a dict `p` with a prefix, so tests can hand over blocks' parameters."""

import torch
import torch.nn.functional as F


def quick_gelu(x):
    # transformers' QuickGELUActivation.
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


def clip_embeddings(p, pixels, patch, class_token=True, interpolate=False):
    """CLIPVisionEmbeddings.forward, with interpolate_pos_encoding."""
    w = p["patch_embedding.weight"]
    x = F.conv2d(pixels.to(w.dtype), w, p.get("patch_embedding_bias.weight"), stride=patch)
    grid_h, grid_w = x.shape[2], x.shape[3]
    x = x.flatten(2).transpose(1, 2)
    table = p["position_embedding.weight"]
    if class_token:
        cls = p["class_embedding.weight"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
    first = 1 if class_token else 0
    side = int((table.shape[0] - first) ** 0.5)
    if (grid_h, grid_w) != (side, side):
        assert interpolate
        dim = table.shape[1]
        grid = table[first:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(-1, dim)
        table = torch.cat([table[:first], grid], dim=0)
    return x + table.unsqueeze(0)


def layer_norm(p, x, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), p["weight"], p.get("bias"), eps)


def sub(p, prefix):
    return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}


def clip_attention(p, x, heads):
    """CLIPAttention.forward without masks: bidirectional, scale head_dim ** -0.5."""
    b, t, d = x.shape
    hd = d // heads

    def proj(name):
        return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))

    q = proj("query").view(b, t, heads, hd).transpose(1, 2)
    k = proj("key").view(b, t, heads, hd).transpose(1, 2)
    v = proj("value").view(b, t, heads, hd).transpose(1, 2)
    w = torch.softmax((q * hd ** -0.5) @ k.transpose(-1, -2), dim=-1)
    o = (w @ v).transpose(1, 2).reshape(b, t, d)
    return F.linear(o, p["output.weight"], p.get("output.bias"))


def clip_layer(p, x, heads, activation="quick_gelu", eps=1e-5):
    """CLIPEncoderLayer.forward: pre-norm attention and MLP residuals."""
    h = layer_norm(sub(p, "normalization."), x, eps)
    x = x + clip_attention(sub(p, "mixer."), h, heads)
    h = layer_norm(sub(p, "mlp_normalization."), x, eps)
    h = F.linear(h, p["mlp.up.weight"], p.get("mlp.up.bias"))
    h = F.linear(ACTIVATIONS[activation](h), p["mlp.down.weight"], p.get("mlp.down.bias"))
    return x + h


def clip_hidden_states(p, pixels, patch, layers, heads, class_token=True, interpolate=False,
                       pre_norm=True, activation="quick_gelu"):
    """CLIPVisionTransformer.forward(output_hidden_states=True).hidden_states: index 0 is the
    embeddings after pre_layrnorm, index i the output of layer i."""
    x = clip_embeddings(p, pixels, patch, class_token, interpolate)
    if pre_norm:
        x = layer_norm(sub(p, "pre_normalization."), x)
    states = [x]
    for i in range(layers):
        x = clip_layer(sub(p, "body.%d." % i), x, heads, activation)
        states.append(x)
    return states


def llava_projector(p, x, activation="gelu"):
    """LlavaMultiModalProjector.forward: linear_2(act(linear_1(x)))."""
    h = F.linear(x, p["up.weight"], p.get("up.bias"))
    return F.linear(ACTIVATIONS[activation](h), p["down.weight"], p.get("down.bias"))


def perceiver_resampler(p, x, depth, heads, activation="gelu", eps=1e-5):
    """flamingo_pytorch's PerceiverResampler.forward on [items, tokens, dim] media (one image
    per item: media_pos_emb[:1]), its PerceiverAttention and FeedForward per layer."""
    x = x + p["media_position.weight"]
    latents = p["latents.weight"].unsqueeze(0).expand(x.shape[0], -1, -1)
    for i in range(depth):
        q = sub(p, "layers.%d." % i)
        xm = layer_norm(sub(q, "media_normalization."), x, eps)
        lt = layer_norm(sub(q, "latent_normalization."), latents, eps)
        query = F.linear(lt, q["query.weight"])
        kv = torch.cat((xm, lt), dim=-2)
        key, value = F.linear(kv, q["key.weight"]), F.linear(kv, q["value.weight"])
        b, n, inner = query.shape
        hd = inner // heads
        split = lambda t: t.view(b, t.shape[1], heads, hd).transpose(1, 2)
        sim = (split(query) * hd ** -0.5) @ split(key).transpose(-1, -2)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        out = (sim.softmax(dim=-1) @ split(value)).transpose(1, 2).reshape(b, n, inner)
        latents = F.linear(out, q["output.weight"]) + latents
        h = layer_norm(sub(q, "mlp_normalization."), latents, eps)
        h = F.linear(ACTIVATIONS[activation](F.linear(h, q["up.weight"])), q["down.weight"])
        latents = h + latents
    return layer_norm(sub(p, "final_normalization."), latents, eps)


def kosmos2_latent_attention(p, hidden, heads):
    """Kosmos2ImageToTextProjection.forward after `dense`: KosmosTextAttention of the latent
    queries over cat([hidden, latents]), biases on every projection, no inner layer norm."""
    latents = p["latents.weight"].unsqueeze(0).expand(hidden.shape[0], -1, -1)
    kv = torch.cat([hidden, latents], dim=1)
    b, n, d = latents.shape
    hd = p["query.weight"].shape[0] // heads
    q = F.linear(latents, p["query.weight"], p["query.bias"]) * hd ** -0.5
    k = F.linear(kv, p["key.weight"], p["key.bias"])
    v = F.linear(kv, p["value.weight"], p["value.bias"])
    split = lambda t: t.view(b, t.shape[1], heads, hd).transpose(1, 2)
    w = torch.softmax(split(q) @ split(k).transpose(-1, -2), dim=-1)
    o = (w @ split(v)).transpose(1, 2).reshape(b, n, heads * hd)
    return F.linear(o, p["output.weight"], p["output.bias"])
