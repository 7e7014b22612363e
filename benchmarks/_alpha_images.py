"""RGBA test images made from the bundled photographs (nothing tuned to emcore).

- feathered: the chelsea photo inside an ellipse with a soft 25% edge, corners clear;
- glow: a soft coloured radial glow (alpha falling off smoothly) behind a sharp disc;
- icon: antialiased shapes drawn at 4x and downsampled, on a clear background;
- screenshot: a window with rounded corners and a translucent drop shadow, its
  content the astronaut photo and flat UI bars.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from _data import load_photo


def feathered() -> np.ndarray:
    photo = load_photo("chelsea")
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    alpha = np.rint(np.clip((1.0 - r) / 0.25, 0, 1) * 255).astype(np.uint8)
    return np.dstack([photo, alpha])


def glow(size: int = 320) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    r = np.hypot(yy, xx)
    alpha = np.clip(np.exp(-3 * r ** 2) * 1.1, 0, 1)
    hue = np.arctan2(yy, xx) / (2 * np.pi) + 0.5
    rgb = np.stack([0.5 + 0.5 * np.cos(2 * np.pi * (hue + t)) for t in (0, 1 / 3, 2 / 3)], -1)
    rgb = rgb * (1 - 0.6 * r[..., None].clip(0, 1)) + 0.6 * r[..., None].clip(0, 1)
    disc = r < 0.3
    rgb[disc] = (1.0, 0.95, 0.8)
    alpha[disc] = 1.0
    img = np.concatenate([rgb, alpha[..., None]], -1)
    return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)


def icon(size: int = 256) -> np.ndarray:
    big = Image.new("RGBA", (size * 4, size * 4), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    s = size * 4
    d.rounded_rectangle([s * 0.08, s * 0.08, s * 0.92, s * 0.92], radius=s * 0.18,
                        fill=(40, 110, 200, 255))
    d.ellipse([s * 0.25, s * 0.2, s * 0.75, s * 0.7], fill=(250, 250, 250, 255))
    d.polygon([(s * 0.3, s * 0.85), (s * 0.5, s * 0.55), (s * 0.7, s * 0.85)],
              fill=(240, 180, 30, 230))
    d.line([(s * 0.15, s * 0.5), (s * 0.85, s * 0.5)], fill=(200, 40, 60, 160), width=s // 40)
    shadow = big.split()[3].filter(ImageFilter.GaussianBlur(s * 0.02))
    under = Image.new("RGBA", big.size, (0, 0, 0, 0))
    under.putalpha(shadow.point(lambda v: v * 0.5))
    composed = Image.alpha_composite(under, big)
    return np.asarray(composed.resize((size, size), Image.LANCZOS))


def screenshot() -> np.ndarray:
    photo = Image.fromarray(load_photo("astronaut")).resize((360, 300))
    w, h, pad = 400, 380, 18
    win = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    shadow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shadow).rounded_rectangle([pad + 4, pad + 8, w - pad + 4, h - pad + 8],
                                             radius=14, fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(8))
    win.putalpha(shadow)
    body = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(body)
    d.rounded_rectangle([pad, pad, w - pad, h - pad], radius=14, fill=(246, 246, 248, 255))
    d.rectangle([pad, pad + 14, w - pad, pad + 34], fill=(225, 228, 235, 255))
    for i, c in enumerate([(255, 95, 86), (255, 189, 46), (39, 201, 63)]):
        d.ellipse([pad + 10 + i * 18, pad + 8, pad + 22 + i * 18, pad + 20], fill=c + (255,))
    body.paste(photo, (pad + 2, pad + 40))
    return np.asarray(Image.alpha_composite(win, body))


ALPHA_IMAGES = {"feathered": feathered, "glow": glow, "icon": icon, "screenshot": screenshot}
