"""A deterministic procedural renderer: prompt words + seed + size -> a PNG composition.

This is what the offline ``LocalGenerator`` draws. It is not AI output and says so in a caption strip. It reads
the prompt for a *scene* (space, water, city, forest, mountains, portrait, abstract), a *mood* (night, neon,
sunset, winter, ...) and *colour words*, and paints layered gradients, silhouettes, light and grain.

Speed: the smooth layers are painted at about half resolution (they are smooth, so nothing is lost) and
upscaled once; only the crisp details (stars, windows, grain, caption) are drawn at full size. Memory stays
small because every full-size array is uint8 or a single float32 plane.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studio_core.adapters.images import encode_png

RENDERER_VERSION = "local-procedural-1"

_WORD = re.compile(r"[a-z]+")
_INTERNAL_MAX_SIDE = 512  # smooth layers are painted at most this big, then upscaled

RGB = tuple[float, float, float]


def _hex(value: str) -> RGB:
    v = value.lstrip("#")
    return (int(v[0:2], 16) / 255, int(v[2:4], 16) / 255, int(v[4:6], 16) / 255)


COLOUR_WORDS: dict[str, RGB] = {name: _hex(h) for name, h in {
    "red": "d7263d", "crimson": "b0103a", "scarlet": "e0311f", "ruby": "9b111e", "orange": "f77f00",
    "amber": "ffb000", "gold": "f4c430", "golden": "f2b84b", "yellow": "f9dc5c", "lime": "a7d948",
    "green": "3a9d5d", "emerald": "1f9e6e", "jade": "2e8b6f", "olive": "708238", "teal": "138a8a",
    "turquoise": "30c5c0", "cyan": "2ee6e6", "aqua": "4fd8e0", "blue": "2b6cd8", "azure": "3d8bfd",
    "cobalt": "1f4fbf", "navy": "1b2a5c", "indigo": "3b2c85", "violet": "7f4fd6", "purple": "7b2cbf",
    "lavender": "b9a2e8", "magenta": "e02ca0", "pink": "f58bb5", "rose": "e8577e", "coral": "ff6f61",
    "peach": "ffb38a", "brown": "7a4a2a", "bronze": "b0783c", "copper": "c06a35", "silver": "c0c8d2",
    "grey": "8a8f98", "gray": "8a8f98", "black": "14141a", "white": "f3f1ec", "ivory": "f4efe1",
    "beige": "dccbb0", "sepia": "9b7653", "mint": "98e2c6", "sapphire": "1d4fa8",
}.items()}


@dataclass(frozen=True)
class Palette:
    sky_top: RGB
    sky_horizon: RGB
    light: RGB  # sun / moon / key light
    far: RGB  # distant ground, hazy
    near: RGB  # foreground ground, dark
    accent: RGB  # windows, bokeh, rim light


# Moods, first match wins; each is a hand-tuned palette that reads well at thumbnail size.
_MOODS: list[tuple[frozenset[str], str, Palette]] = [
    (frozenset({"neon", "cyberpunk", "synthwave", "vaporwave", "retrowave"}), "neon",
     Palette(_hex("0b0630"), _hex("e0389b"), _hex("ff7ad9"), _hex("4b1d7a"), _hex("0d0721"), _hex("29f0ff"))),
    (frozenset({"night", "midnight", "moon", "moonlit", "moonlight", "nocturnal", "starry", "nighttime"}),
     "night",
     Palette(_hex("050a1f"), _hex("1f3566"), _hex("e8eefc"), _hex("22345e"), _hex("070b18"), _hex("ffd27a"))),
    (frozenset({"sunset", "sunrise", "dusk", "dawn", "evening", "twilight", "golden"}), "sunset",
     Palette(_hex("2a1b5e"), _hex("ff8c5a"), _hex("ffd37a"), _hex("8a3f6b"), _hex("2b1233"), _hex("ffb347"))),
    (frozenset({"fire", "lava", "volcano", "volcanic", "inferno", "burning", "flames", "hell"}), "fire",
     Palette(_hex("1a0505"), _hex("c2331b"), _hex("ffb347"), _hex("5a1409"), _hex("120303"), _hex("ff7b00"))),
    (frozenset({"snow", "snowy", "winter", "ice", "icy", "frozen", "arctic", "frost", "glacier"}), "winter",
     Palette(_hex("7fa7d9"), _hex("e6f0fa"), _hex("fffdf5"), _hex("a9c1dc"), _hex("3e5878"), _hex("ffffff"))),
    (frozenset({"storm", "stormy", "moody", "gloomy", "fog", "foggy", "mist", "misty", "rain", "rainy"}),
     "moody",
     Palette(_hex("2c3440"), _hex("8a97a6"), _hex("d9dee5"), _hex("55606d"), _hex("1b2027"), _hex("c9a86a"))),
    (frozenset({"autumn", "fall", "harvest", "october"}), "autumn",
     Palette(_hex("5f7fa8"), _hex("f2c18d"), _hex("ffe2a8"), _hex("a5532b"), _hex("3b1d10"), _hex("e8891c"))),
    (frozenset({"spring", "pastel", "dreamy", "blossom", "cherry", "whimsical", "soft"}), "pastel",
     Palette(_hex("a8c8f0"), _hex("ffd9e6"), _hex("fff6e0"), _hex("c6a7d9"), _hex("6d7fb3"), _hex("ff9ec4"))),
    (frozenset({"underwater", "ocean", "sea", "reef", "deep"}), "ocean",
     Palette(_hex("0b3d6b"), _hex("59c3d9"), _hex("f4fbff"), _hex("1f6f8b"), _hex("06233d"), _hex("9ff3e9"))),
    (frozenset({"desert", "dunes", "sand", "sahara", "canyon", "arid"}), "desert",
     Palette(_hex("3d7cc9"), _hex("f6d7a7"), _hex("fff4d6"), _hex("d49a5e"), _hex("7a4524"), _hex("ffcf70"))),
    (frozenset({"forest", "jungle", "woods", "woodland", "green", "nature", "garden"}), "verdant",
     Palette(_hex("6fa8c9"), _hex("e4f0d0"), _hex("fff3c4"), _hex("5d8a66"), _hex("14301e"), _hex("f5e07a"))),
]
_DAY = Palette(_hex("3a78c9"), _hex("cfe6f5"), _hex("fff6da"), _hex("7d9bb8"), _hex("2f4a3a"), _hex("ffd166"))

_SCENES: list[tuple[str, frozenset[str]]] = [
    ("space", frozenset({"space", "galaxy", "nebula", "cosmos", "cosmic", "planet", "astronaut", "universe",
                         "orbit", "stars", "spaceship", "starship"})),
    ("portrait", frozenset({"portrait", "face", "woman", "man", "girl", "boy", "person", "headshot",
                            "character", "warrior", "queen", "king", "princess", "prince", "selfie", "child",
                            "lady", "wizard", "witch", "knight", "samurai", "astronomer", "musician"})),
    ("city", frozenset({"city", "cyberpunk", "street", "skyline", "urban", "downtown", "metropolis",
                        "skyscraper", "skyscrapers", "buildings", "tokyo", "town", "neon"})),
    ("water", frozenset({"ocean", "sea", "beach", "lake", "river", "coast", "waves", "harbor", "harbour",
                         "island", "bay", "shore", "seascape", "lagoon", "pier"})),
    ("forest", frozenset({"forest", "jungle", "woods", "woodland", "trees", "tree", "grove", "pine", "pines",
                          "taiga"})),
    ("mountains", frozenset({"mountain", "mountains", "landscape", "valley", "hills", "vista", "canyon",
                             "desert", "dunes", "peaks", "cliffs", "meadow", "field", "countryside", "alps",
                             "volcano", "glacier", "panorama"})),
]


def words_of(prompt: str) -> list[str]:
    return _WORD.findall(prompt.lower())


def choose_scene(words: list[str]) -> str:
    found = set(words)
    for scene, vocab in _SCENES:
        if found & vocab:
            return scene
    return "abstract"


def choose_palette(words: list[str], scene: str, rng: np.random.Generator) -> tuple[str, Palette]:
    found = set(words)
    mood, pal = "day", _DAY
    for vocab, name, palette in _MOODS:
        if found & vocab:
            mood, pal = name, palette
            break
    else:
        if scene == "space":
            mood, pal = "night", _MOODS[1][2]
        elif scene == "abstract":
            # No mood words: derive a harmonious palette from the prompt's hash so abstract prompts differ.
            mood, pal = "hashed", _hashed_palette(rng)
    colours = [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]
    if colours:
        # Colour words tint the light and accent, and (if two or more) the sky too.
        pal = replace(pal, accent=colours[0], light=_mix(pal.light, colours[0], 0.45))
        if len(colours) > 1:
            pal = replace(pal, sky_horizon=_mix(pal.sky_horizon, colours[1], 0.55),
                          far=_mix(pal.far, colours[1], 0.35))
        else:
            pal = replace(pal, sky_horizon=_mix(pal.sky_horizon, colours[0], 0.3))
    return mood, pal


def _hashed_palette(rng: np.random.Generator) -> Palette:
    import colorsys

    h = float(rng.random())
    spread = 0.08 + 0.12 * float(rng.random())

    def hsv(dh: float, s: float, v: float) -> RGB:
        r, g, b = colorsys.hsv_to_rgb((h + dh) % 1.0, s, v)
        return (r, g, b)

    return Palette(hsv(0, 0.75, 0.28), hsv(spread, 0.55, 0.92), hsv(spread * 2, 0.25, 1.0),
                   hsv(-spread, 0.6, 0.55), hsv(-spread, 0.7, 0.16), hsv(0.5, 0.65, 0.95))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


# -- noise ---------------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int, grid: tuple[int, int]) -> np.ndarray:
    """Value noise: a small random grid upscaled bicubically (Pillow does the interpolation in C)."""
    small = rng.random((grid[0], grid[1]), dtype=np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC))


def _fractal_noise(rng: np.random.Generator, h: int, w: int, base: int = 3, octaves: int = 4) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    aspect = w / h
    for o in range(octaves):
        gy = base * 2**o + 1
        out += amp * _smooth_noise(rng, h, w, (gy, max(2, round(gy * aspect))))
        total += amp
        amp *= 0.5
    return out / total


def _noise_1d(rng: np.random.Generator, n: int, points: int, octaves: int, roughness: float) -> np.ndarray:
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        k = points * 2**o
        ctrl = rng.random(k + 2, dtype=np.float32)
        pos = x * k
        i = pos.astype(np.int32)
        f = pos - i
        f = f * f * (3 - 2 * f)  # smoothstep between control points
        out += amp * (ctrl[i] * (1 - f) + ctrl[i + 1] * f)
        total += amp
        amp *= roughness
    return out / total


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _col(c: RGB) -> np.ndarray:
    return np.asarray(c, np.float32)


# -- the canvas ----------------------------------------------------------------------------------------------
class _Canvas:
    """Float RGB canvas at internal resolution, with normalised coordinates (x in 0..aspect, y in 0..1)."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        self.x = np.linspace(0.0, w / h, w, dtype=np.float32)[None, :]
        self.aspect = w / h

    def blend(self, mask: np.ndarray, colour: np.ndarray | RGB, alpha: float = 1.0) -> None:
        m = (mask * alpha)[..., None] if mask.ndim == 2 else mask * alpha
        c = _col(colour) if isinstance(colour, tuple) else colour
        self.rgb += (c - self.rgb) * m

    def add(self, mask: np.ndarray, colour: RGB, amount: float = 1.0) -> None:
        self.rgb += mask[..., None] * (_col(colour) * amount)

    def vertical_gradient(self, top: RGB, bottom: RGB, y0: float, y1: float, power: float = 1.0) -> np.ndarray:
        t = np.clip((self.y - y0) / max(1e-6, y1 - y0), 0.0, 1.0) ** power
        return _col(top) + (_col(bottom) - _col(top)) * t[..., None]


@dataclass
class _Details:
    """Crisp full-resolution details collected while painting, drawn after the upscale."""

    stars: int = 0
    windows: list[tuple[float, float, float, float]] | None = None  # rects in normalised coords
    window_colour: RGB = (1.0, 0.85, 0.5)


def _sky(cv: _Canvas, pal: Palette, rng: np.random.Generator, horizon: float, sun: tuple[float, float],
         mood: str) -> None:
    cv.rgb[:] = cv.vertical_gradient(pal.sky_top, pal.sky_horizon, 0.0, horizon, power=1.4)
    # Clouds: fractal noise thresholded, lit from the sun's side.
    clouds = _fractal_noise(rng, cv.h, cv.w, base=2, octaves=4)
    stretch = _smoothstep(0.52, 0.78, clouds) * np.clip(1.0 - cv.y / max(horizon, 0.01), 0, 1) ** 0.5
    amount = {"moody": 0.75, "night": 0.25, "neon": 0.2, "space": 0.0}.get(mood, 0.45)
    cloud_col = _mix(pal.sky_horizon, pal.light, 0.5)
    cv.blend(stretch, cloud_col, amount)
    _light(cv, pal, sun, size=0.05 if mood != "sunset" else 0.08, glow=0.9 if mood != "moody" else 0.4)


def _light(cv: _Canvas, pal: Palette, sun: tuple[float, float], size: float, glow: float) -> None:
    d = np.sqrt((cv.x - sun[0] * cv.aspect) ** 2 + (cv.y - sun[1]) ** 2)
    glow *= 1.0 - 0.6 * float(np.mean(pal.sky_horizon))  # a bright sky needs less bloom
    cv.add(np.exp(-((d / (size * 5)) ** 2)) * glow * 0.55, pal.light)
    cv.add(np.exp(-((d / (size * 14)) ** 2)) * glow * 0.25, _mix(pal.light, pal.sky_horizon, 0.5))
    disc = 1.0 - _smoothstep(size * 0.92, size * 1.04, d)
    cv.blend(disc, _mix(pal.light, (1.0, 1.0, 1.0), 0.4))


def _ridges(cv: _Canvas, pal: Palette, rng: np.random.Generator, plan: list[tuple[str, float]],
            haze: RGB) -> None:
    """Silhouette layers from far (hazy, pale) to near (dark, saturated): ``plan`` is (kind, base y) per layer."""
    n = len(plan)
    for i, (kind, base) in enumerate(plan):
        t = i / max(1, n - 1)
        if kind == "mountains":
            v = _noise_1d(rng, cv.w, points=3 + i, octaves=5, roughness=0.55)
            ridged = 1.0 - np.abs(2.0 * v - 1.0)  # sharp peaks
            height = (0.26 - 0.12 * t) * ridged ** 1.5
        elif kind == "hills":
            v = _noise_1d(rng, cv.w, points=2 + i, octaves=3, roughness=0.4)
            height = (0.1 - 0.04 * t) * v
        else:  # trees: a rolling base with triangular crowns
            v = _noise_1d(rng, cv.w, points=2 + i, octaves=3, roughness=0.45)
            height = 0.04 * v + _tree_line(rng, cv, density=16 + 12 * i, tall=0.08 + 0.12 * t)
        profile = (base - height)[None, :]
        mask = np.clip((cv.y - profile) * cv.h, 0.0, 1.0)
        col = _mix(_mix(pal.far, pal.near, t ** 1.2), haze, (1.0 - t) ** 1.5 * 0.65)
        shade = cv.vertical_gradient(col, _mix(col, pal.near, 0.5), float(profile.min()), 1.0)
        texture = (_fractal_noise(rng, cv.h, cv.w, base=6, octaves=2)[..., None] - 0.5) * 0.05
        cv.blend(mask, shade + texture)
        # Mist pooling in each valley gives depth (aerial perspective).
        fog = np.exp(-np.clip(cv.y - base, 0, None) * 14) * mask * 0.3 * (1.0 - t)
        cv.blend(fog, haze)


def _tree_line(rng: np.random.Generator, cv: _Canvas, density: int, tall: float) -> np.ndarray:
    xs = np.linspace(0.0, 1.0, cv.w, dtype=np.float32)[None, :]
    cx = rng.random((density, 1), dtype=np.float32)
    hw = (0.012 + 0.02 * rng.random((density, 1), dtype=np.float32))
    ht = tall * (0.5 + 0.5 * rng.random((density, 1), dtype=np.float32))
    tri = ht * np.clip(1.0 - np.abs(xs - cx) / hw, 0.0, 1.0)
    return tri.max(axis=0)


def _water(cv: _Canvas, pal: Palette, rng: np.random.Generator, horizon: float, sun: tuple[float, float]) -> None:
    below = cv.y > horizon
    # Reflect the sky rows above the horizon, darkened and tinted toward the deep colour.
    src = np.clip(2 * horizon - cv.y, 0.0, 1.0)
    rows = np.clip((src[:, 0] * (cv.h - 1)).astype(np.int32), 0, cv.h - 1)
    reflected = cv.rgb[rows, :, :] * 0.75 + _col(pal.near) * 0.25
    depth = np.clip((cv.y - horizon) / max(1e-6, 1 - horizon), 0, 1)
    streaks = _smooth_noise(rng, cv.h, cv.w, (48, 5))
    ripple = (np.sin((depth ** 0.5) * 160.0 + streaks * 6.0) * 0.5 + 0.5) * (0.3 + 0.7 * depth)
    water = reflected * (0.9 - 0.25 * depth[..., None]) + (ripple[..., None] - 0.5) * 0.07
    glitter_x = np.exp(-(((cv.x - sun[0] * cv.aspect) / (0.05 + 0.25 * depth)) ** 2))
    glint = glitter_x * _smoothstep(0.6, 0.95, ripple) * 0.8
    water = water + glint[..., None] * _col(pal.light)
    m = below.astype(np.float32) * np.ones((1, cv.w), np.float32)
    cv.blend(m, water)
    # A soft bright line where sea meets sky.
    cv.add(np.exp(-((cv.y - horizon) * cv.h / 2.0) ** 2) * np.ones((1, cv.w), np.float32), pal.light, 0.25)


def _city(cv: _Canvas, pal: Palette, rng: np.random.Generator, horizon: float, details: _Details) -> None:
    details.windows = []
    for layer in range(3):
        t = layer / 2
        x = 0.0
        heights = np.zeros(cv.w, np.float32)
        while x < 1.0:
            bw = 0.03 + 0.07 * float(rng.random())
            bh = (0.12 + 0.3 * float(rng.random()) ** 1.6) * (1.15 - 0.35 * t)
            x0, x1 = int(x * cv.w), int(min(1.0, x + bw) * cv.w)
            heights[x0:x1] = bh
            if layer == 2 and float(rng.random()) < 0.9:
                details.windows.append((x + 0.006, horizon + 0.1 - bh, x + bw - 0.006, 1.0))
            x += bw + 0.004 * float(rng.random())
        base = horizon + 0.1 + 0.06 * t
        profile = (base - heights)[None, :]
        mask = np.clip((cv.y - profile) * cv.h, 0.0, 1.0)
        col = _mix(_mix(pal.far, pal.near, 0.4 + 0.6 * t), pal.sky_horizon, (1 - t) * 0.35)
        cv.blend(mask, cv.vertical_gradient(col, pal.near, float(profile.min()), 1.0))
    # Neon haze at street level.
    glow = np.exp(-(((cv.y - 0.9) / 0.12) ** 2)) * np.ones((1, cv.w), np.float32)
    cv.add(glow, pal.accent, 0.18)
    details.window_colour = pal.accent


def _space(cv: _Canvas, pal: Palette, rng: np.random.Generator, details: _Details) -> None:
    cv.rgb[:] = cv.vertical_gradient(_mix(pal.sky_top, (0, 0, 0), 0.5), pal.sky_top, 0.0, 1.0)
    n1 = _fractal_noise(rng, cv.h, cv.w, base=2, octaves=5)
    n2 = _fractal_noise(rng, cv.h, cv.w, base=3, octaves=4)
    cv.add(_smoothstep(0.4, 0.75, n1), _mix(pal.accent, pal.sky_horizon, 0.3), 0.55)
    cv.add(_smoothstep(0.45, 0.8, n2), _mix(pal.sky_horizon, (0.5, 0.2, 0.7), 0.5), 0.5)
    # A planet with a lit limb.
    px, py, r = 0.25 + 0.5 * float(rng.random()), 0.62 + 0.2 * float(rng.random()), 0.16 + 0.1 * float(rng.random())
    dx, dy = cv.x - px * cv.aspect, cv.y - py
    d = np.sqrt(dx * dx + dy * dy)
    body = 1.0 - _smoothstep(r - 0.004, r + 0.004, d)
    lit = np.clip(0.55 - (dx + dy) / (2 * r), 0.0, 1.0)
    surface = _col(_mix(pal.far, pal.near, 0.5)) + lit[..., None] * _col(pal.light) * 0.6
    bands = (np.sin(dy / r * 14.0 + _smooth_noise(rng, cv.h, cv.w, (6, 6)) * 3) * 0.5 + 0.5) * 0.12
    cv.blend(body, surface + bands[..., None])
    atmosphere = np.exp(-(((d - r) / 0.012) ** 2)) * lit
    cv.add(atmosphere, pal.light, 0.7)
    details.stars = 900


def _portrait(cv: _Canvas, pal: Palette, rng: np.random.Generator) -> None:
    """An abstract poster-style bust: halo, silhouette, rim light. Clearly a placeholder, not a likeness."""
    cv.rgb[:] = cv.vertical_gradient(pal.sky_top, pal.sky_horizon, 0.0, 1.0, power=0.8)
    cx = cv.aspect * (0.5 + 0.06 * (float(rng.random()) - 0.5))
    hy = 0.4
    halo_d = np.sqrt((cv.x - cx) ** 2 + (cv.y - hy) ** 2)
    cv.add(np.exp(-((halo_d / 0.3) ** 2)), pal.light, 0.55)
    cv.add(np.exp(-(((halo_d - 0.25) / 0.006) ** 2)), pal.accent, 0.45)
    _bokeh(cv, pal, rng, count=9)
    # Soft masks: an egg-shaped head (narrower at the chin), a neck, shoulders sloping away from it.
    dx = np.abs(cv.x - cx)
    below = np.clip((cv.y - hy) / 0.15, 0.0, 1.0)
    rx = 0.105 * (1.0 - 0.22 * below**2)
    head = np.clip((1.0 - ((cv.x - cx) / rx) ** 2 - ((cv.y - hy) / 0.15) ** 2) * 20.0, 0.0, 1.0)
    neck = np.clip((0.052 - dx) * cv.h, 0.0, 1.0) * (cv.y > hy + 0.08)
    top = 0.63 + 0.2 * np.sqrt(np.clip(dx - 0.04, 0.0, None)) + 4.0 * np.clip(dx - 0.3, 0.0, None) ** 2
    shoulders = np.clip((cv.y - top) * cv.h, 0.0, 1.0)
    sil = np.maximum(np.maximum(head, neck), shoulders)
    # Rim light: the silhouette minus itself shifted toward the light.
    shift = max(2, cv.w // 140)
    rim = np.clip(sil - np.roll(sil, -shift, axis=1), 0.0, 1.0)
    body = cv.vertical_gradient(_mix(pal.near, pal.far, 0.3), pal.near, 0.25, 1.0)
    cv.blend(sil, body)
    cv.add(rim, _mix(pal.accent, pal.light, 0.5), 0.8)


def _abstract(cv: _Canvas, pal: Palette, rng: np.random.Generator) -> None:
    cv.rgb[:] = cv.vertical_gradient(pal.sky_top, pal.sky_horizon, 0.0, 1.0, power=0.9)
    colours = [pal.far, pal.accent, pal.light, pal.sky_horizon, pal.near]
    for i in range(5):
        freq = 2.0 + 4.0 * float(rng.random())
        phase = 6.28 * float(rng.random())
        amp = 0.05 + 0.08 * float(rng.random())
        base = 0.3 + 0.14 * i
        wobble = _noise_1d(rng, cv.w, points=3, octaves=3, roughness=0.5)[None, :] * 0.08
        edge = base + amp * np.sin(cv.x * freq + phase) + wobble
        mask = np.clip((cv.y - edge) * cv.h / 3.0, 0.0, 1.0)
        col = colours[i % len(colours)]
        cv.blend(mask, cv.vertical_gradient(col, _mix(col, pal.near, 0.5), base, 1.0), 0.55 + 0.08 * i)
        # A bright crest line along each wave.
        cv.add(np.exp(-(((cv.y - edge) * cv.h / 2.5) ** 2)), pal.light, 0.12)


def _bokeh(cv: _Canvas, pal: Palette, rng: np.random.Generator, count: int) -> None:
    """Soft out-of-focus light discs (a smoothstep edge reads as defocus, no blur pass needed)."""
    for _ in range(count):
        x, y = float(rng.random()) * cv.aspect, float(rng.random()) * 0.85
        r = 0.012 + 0.05 * float(rng.random()) ** 2
        d = np.sqrt((cv.x - x) ** 2 + (cv.y - y) ** 2)
        disc = 1.0 - _smoothstep(r * 0.75, r, d)
        colour = pal.accent if rng.random() < 0.6 else pal.light
        cv.add(disc, colour, 0.12 + 0.25 * float(rng.random()))


def _finish(cv: _Canvas) -> np.ndarray:
    # Vignette and a gentle S-curve, then to 8 bit.
    r2 = ((cv.x / cv.aspect - 0.5) ** 2 + (cv.y - 0.5) ** 2) * 2.0
    cv.rgb *= (1.0 - 0.38 * r2 ** 1.5)[..., None]
    rgb = np.clip(cv.rgb, 0.0, 1.0)
    rgb = rgb * rgb * (3.0 - 2.0 * rgb) * 0.35 + rgb * 0.65
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def _seed_for(prompt: str, seed: int) -> int:
    # Size is deliberately not part of the seed: the same prompt+seed keeps its composition at any size.
    digest = hashlib.sha256(f"{RENDERER_VERSION}\0{seed}\0{prompt.strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def render(prompt: str, seed: int, width: int, height: int) -> bytes:
    """Paint the composition and return PNG bytes. Deterministic for (prompt, seed, width, height)."""
    if width < 16 or height < 16:
        raise ValueError("image too small")
    rng = np.random.Generator(np.random.PCG64(_seed_for(prompt, seed)))
    words = words_of(prompt)
    scene = choose_scene(words)
    mood, pal = choose_palette(words, scene, rng)

    scale = min(1.0, _INTERNAL_MAX_SIDE / max(width, height))
    cv = _Canvas(max(8, round(width * scale)), max(8, round(height * scale)))
    details = _Details()
    horizon = 0.55 + 0.12 * float(rng.random())
    low_sun = mood in ("sunset", "fire")
    sun = (0.2 + 0.6 * float(rng.random()), horizon - (0.06 if low_sun else 0.2 + 0.12 * float(rng.random())))
    if mood in ("night", "neon"):
        details.stars = 350

    if scene == "space":
        _space(cv, pal, rng, details)
    elif scene == "portrait":
        _portrait(cv, pal, rng)
    elif scene == "abstract":
        _abstract(cv, pal, rng)
        _bokeh(cv, pal, rng, count=12)
    else:
        haze = _mix(pal.sky_horizon, pal.light, 0.25)
        if scene == "mountains":
            horizon = 0.72 + 0.08 * float(rng.random())  # low horizon: the sky and peaks fill the frame
            sun = (sun[0], min(sun[1], horizon - 0.36))
        _sky(cv, pal, rng, horizon, sun, mood)
        if scene == "water":
            _ridges(cv, pal, rng, [("hills", horizon - 0.03), ("hills", horizon - 0.005)], haze)
            _water(cv, pal, rng, horizon, sun)
        elif scene == "city":
            _city(cv, pal, rng, horizon, details)
            _bokeh(cv, pal, rng, count=10)
        elif scene == "forest":
            _ridges(cv, pal, rng, [("mountains", horizon - 0.08), ("trees", horizon + 0.04),
                                   ("trees", horizon + 0.14), ("trees", horizon + 0.26)], haze)
        else:
            _ridges(cv, pal, rng, [("mountains", horizon - 0.12), ("mountains", horizon - 0.04),
                                   ("mountains", horizon + 0.04), ("hills", horizon + 0.12),
                                   ("hills", horizon + 0.2)], haze)

    small = Image.fromarray(_finish(cv))
    img = small.resize((width, height), Image.Resampling.BICUBIC) if small.size != (width, height) else small
    out = np.array(img)  # writable full-size uint8 copy for the crisp details
    del img, small, cv

    if details.stars:
        _stars(out, rng, details.stars, sky_limit=0.6 if scene != "space" else 1.0)
    pil = Image.fromarray(out)
    if details.windows:
        _windows(pil, rng, details)
    out = np.asarray(pil)
    out = _grain(out, rng)
    pil = Image.fromarray(out)
    _caption(pil, f"offline preview \u00b7 procedural \u00b7 seed {seed}")
    return encode_png(pil)


def _stars(out: np.ndarray, rng: np.random.Generator, count: int, sky_limit: float) -> None:
    h, w = out.shape[:2]
    count = int(count * (w * h) / (1024 * 1024)) + 20
    ys = (rng.random(count) ** 1.3 * sky_limit * h).astype(np.int32)
    xs = (rng.random(count) * w).astype(np.int32)
    b = (120 + 135 * rng.random(count) ** 3).astype(np.int16)
    px = out[ys, xs].astype(np.int16)
    out[ys, xs] = np.clip(px + b[:, None], 0, 255).astype(np.uint8)
    bright = b > 230  # a few brighter stars get a small cross
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        yy, xx = np.clip(ys[bright] + dy, 0, h - 1), np.clip(xs[bright] + dx, 0, w - 1)
        out[yy, xx] = np.clip(out[yy, xx].astype(np.int16) + 70, 0, 255).astype(np.uint8)


def _windows(img: Image.Image, rng: np.random.Generator, details: _Details) -> None:
    w, h = img.size
    draw = ImageDraw.Draw(img)
    cell_w, cell_h = max(3, w // 160), max(4, h // 110)
    on = tuple(int(v * 255) for v in _mix(details.window_colour, (1.0, 0.9, 0.6), 0.5))
    dim = tuple(int(v * 120) for v in details.window_colour)
    for x0, y0, x1, y1 in details.windows or []:
        px0, py0, px1, py1 = int(x0 * w), int(max(0.0, y0) * h), int(x1 * w), int(min(1.0, y1) * h)
        for y in range(py0 + cell_h, py1 - cell_h, cell_h * 2):
            for x in range(px0 + cell_w, px1 - cell_w, cell_w * 2):
                roll = float(rng.random())
                if roll < 0.35:
                    draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=on if roll < 0.22 else dim)


def _grain(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fine film grain: one luma plane, small amplitude (keeps gradients from banding)."""
    h, w = out.shape[:2]
    g = rng.integers(-3, 4, size=(h, w), dtype=np.int16)
    return np.clip(out.astype(np.int16) + g[..., None], 0, 255).astype(np.uint8)


def _caption(img: Image.Image, text: str) -> None:
    """The honest label: a subtle translucent strip along the bottom edge."""
    w, h = img.size
    strip = max(14, h // 36)
    region = img.crop((0, h - strip, w, h))
    darker = Image.eval(region, lambda v: int(v * 0.55))
    img.paste(darker, (0, h - strip))
    font = ImageFont.load_default(size=max(9, int(strip * 0.62)))
    draw = ImageDraw.Draw(img)
    draw.text((max(6, strip // 2), h - strip / 2), text, fill=(235, 235, 235), font=font, anchor="lm")
