"""CLIPImageProcessor's preprocessing written with Pillow and numpy, step by step as
transformers' image_processing_clip.py and image_transforms.py do it: convert("RGB"), resize of
the short side to `shortest_edge` (the long side int(shortest_edge * long / short)) with
PIL.Image.BICUBIC and reducing_gap=None, center_crop (top and left floor-halved), rescale in
float64 then float32, normalize in float32."""

import numpy as np
from PIL import Image

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_pixels(path, shortest_edge, crop_h, crop_w, mean=CLIP_MEAN, std=CLIP_STD):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(shortest_edge * long / short)
    size = (shortest_edge, new_long) if w <= h else (new_long, shortest_edge)
    image = image.resize(size, resample=Image.BICUBIC, reducing_gap=None)
    x = np.array(image)  # [h, w, 3] uint8
    top = (x.shape[0] - crop_h) // 2
    left = (x.shape[1] - crop_w) // 2
    x = x[top:top + crop_h, left:left + crop_w]
    x = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return x.transpose(2, 0, 1).copy()  # [3, h, w]
