"""The offline PromptEnhancer: deterministic rules, no network.

It reads the prompt (and the template hint) for a subject category and a style, then appends one phrase per
aspect the prompt does not already cover: style, lighting, composition, mood, detail. ``added`` lists exactly
the appended phrases, in order, so the UI can show the diff. The user's text is never rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio_core.ports import Enhancement, ErrorCode, ProviderError

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class _Category:
    name: str
    triggers: frozenset[str]
    style: str
    lighting: str
    composition: str
    mood: str
    detail: str
    negative: tuple[str, ...] = ()


def _c(name: str, triggers: str, style: str, lighting: str, composition: str, mood: str, detail: str,
       negative: tuple[str, ...] = ()) -> _Category:
    return _Category(name, frozenset(triggers.split()), style, lighting, composition, mood, detail, negative)


# Checked in order; the first category with a trigger word in the prompt (or template hint) wins.
_CATEGORIES: tuple[_Category, ...] = (
    _c("portrait", "portrait face woman man girl boy person headshot selfie character queen king warrior "
                   "child lady gentleman model",
       "photorealistic portrait photography, 85mm lens", "soft Rembrandt portrait lighting",
       "head-and-shoulders framing with shallow depth of field", "intimate, confident mood",
       "detailed skin texture and sharp eyes",
       ("distorted face", "asymmetrical eyes", "extra fingers", "bad anatomy")),
    _c("space", "space galaxy nebula planet cosmos cosmic astronaut universe orbit spaceship starship",
       "epic sci-fi concept art", "rim light from a distant star", "vast cosmic scale with a clear focal point",
       "awe-inspiring, serene mood", "intricate nebula detail and pin-sharp stars", ("cartoonish",)),
    _c("landscape", "landscape mountain mountains valley hills vista canyon desert dunes meadow field "
                    "countryside forest woods lake river waterfall coast beach ocean sea island glacier",
       "landscape photography", "golden hour light with long soft shadows",
       "wide vista with a strong foreground and layered depth", "tranquil, expansive mood",
       "rich natural textures, high dynamic range", ("oversaturated", "tilted horizon")),
    _c("city", "city street skyline urban downtown architecture building buildings skyscraper alley cafe "
               "town village bridge",
       "architectural photography", "soft overcast light with gentle contrast",
       "leading lines and a balanced symmetrical composition", "lively, characterful mood",
       "clean lines and fine architectural detail", ("distorted perspective", "warped lines")),
    _c("animal", "cat cats dog dogs bird birds fox wolf horse lion tiger owl bear deer rabbit animal "
                 "animals puppy kitten dragon",
       "wildlife photography, telephoto lens", "soft natural backlight with a gentle rim light",
       "eye-level close-up with a blurred background", "gentle, alive mood",
       "individual hairs and feathers in sharp focus",
       ("extra limbs", "deformed paws")),
    _c("food", "food dish meal cake coffee tea breakfast dessert pizza sushi bread fruit cocktail ramen noodles "
               "soup salad pasta burger sandwich tacos dumplings curry steak pancakes cookies chocolate wine "
               "beer croissant",
       "editorial food photography", "soft window light from the side", "overhead flat lay on a textured table",
       "warm, inviting mood", "glistening textures and fresh garnish", ("unappetizing", "plastic look")),
    _c("product", "product bottle watch shoe sneaker perfume phone headphones jewelry ring bag",
       "commercial product photography", "clean softbox studio lighting",
       "centered hero shot on a seamless backdrop",
       "premium, minimal mood", "crisp edges and accurate materials", ("cluttered background", "fingerprints")),
    _c("interior", "room interior kitchen bedroom livingroom library studio office hall",
       "interior design photography", "warm ambient light through large windows",
       "wide-angle view with straight verticals", "calm, inviting mood", "tactile materials and tidy detail",
       ("distorted perspective",)),
    _c("fantasy", "castle wizard witch magic fairy elf knight sorcerer enchanted mythical kingdom spell",
       "epic fantasy illustration", "volumetric god rays through drifting mist",
       "sweeping establishing shot with a clear hero", "enchanting, mythical mood", "ornate, intricate detail",
       ("modern objects",)),
)
# Time-of-day / weather words override the subject's lighting and mood (a portrait at night is lit like night).
_MODIFIERS: tuple[tuple[frozenset[str], dict[str, str]], ...] = (
    (frozenset("neon cyberpunk synthwave vaporwave nightlife".split()),
     {"style": "cinematic photography", "lighting": "moody neon glow with wet reflections",
      "mood": "atmospheric, electric mood"}),
    (frozenset("night midnight moonlit moon nocturnal starry".split()),
     {"lighting": "cool moonlight with deep blue shadows", "mood": "quiet, mysterious mood"}),
    (frozenset("storm stormy rain rainy fog foggy mist misty".split()),
     {"lighting": "dramatic diffused storm light", "mood": "brooding, cinematic mood"}),
    (frozenset("snow snowy winter frozen frost icy".split()),
     {"lighting": "crisp cold daylight with soft bounce from the snow", "mood": "hushed winter mood"}),
)
_DEFAULT = _c("general", "", "digital art", "soft diffused light",
              "balanced composition with a clear focal point", "evocative mood", "rich detail and sharp focus")

# Explicit style words (in the template hint or the prompt) replace the category's default style.
_STYLES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"watercolor", "watercolour"}), "soft watercolor washes on textured paper"),
    (frozenset({"anime", "manga", "ghibli"}), "clean anime illustration with cel shading"),
    (frozenset({"oil", "painting", "impressionist", "impressionism"}),
     "textured oil painting with visible brushstrokes"),
    (frozenset({"pixel", "8-bit", "16-bit"}), "crisp pixel art with a limited palette"),
    (frozenset({"3d", "render", "isometric", "octane", "blender"}), "polished 3D render with global illumination"),
    (frozenset({"sketch", "pencil", "charcoal", "drawing"}), "expressive pencil sketch with cross-hatching"),
    (frozenset({"vintage", "retro", "film", "analog", "polaroid"}), "vintage film photograph with natural grain"),
    (frozenset({"minimalist", "minimal", "flat", "vector", "poster"}), "minimalist flat vector design"),
    (frozenset({"comic", "graphic", "novel"}), "bold comic-book inks with halftone shading"),
    (frozenset({"photo", "photograph", "photography", "photorealistic", "realistic", "cinematic"}), ""),
)

# A prompt that already talks about an aspect keeps its own words for it (cues may be several words).
_ASPECT_CUES: dict[str, tuple[str, ...]] = {
    "lighting": ("light", "lighting", "lit", "glow", "glowing", "sunlight", "moonlight", "backlit", "shadows",
                 "golden hour", "golden-hour", "sunset", "sunrise", "illuminated", "candlelight"),
    "composition": ("close-up", "closeup", "close up", "wide-angle", "wide angle", "wide shot", "composition",
                    "framing", "angle", "aerial", "overhead", "panorama", "panoramic", "macro", "full body"),
    "mood": ("mood", "moody", "atmosphere", "atmospheric", "serene", "calm", "eerie", "dramatic", "cozy",
             "melancholic", "whimsical", "peaceful"),
    "detail": ("detailed", "detail", "intricate", "4k", "8k", "sharp", "hyperdetailed", "high resolution"),
}


def _mentions(text_lower: str, cues: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(cue)}(?![\w-])", text_lower) for cue in cues)


_BASE_NEGATIVE = ("blurry", "low quality", "jpeg artifacts", "watermark", "text", "signature", "deformed")


class LocalEnhancer:
    name = "local"

    def __init__(self, *, max_chars: int = 1000) -> None:
        self._max_chars = max_chars

    def enhance(self, prompt: str, *, template_hint: str | None = None) -> Enhancement:
        original = prompt
        text = " ".join(prompt.split())
        if not text:
            raise ProviderError(ErrorCode.BAD_REQUEST, "empty prompt")
        if len(text) > self._max_chars:
            raise ProviderError(ErrorCode.BAD_REQUEST, f"prompt longer than {self._max_chars} characters")
        lower = text.lower()
        words = set(_WORD.findall(lower))
        hint_words = set(_WORD.findall((template_hint or "").lower()))
        category = next((c for c in _CATEGORIES if c.triggers & words), None) \
            or next((c for c in _CATEGORIES if c.triggers & hint_words), _DEFAULT)

        overrides = next((o for vocab, o in _MODIFIERS if vocab & words), {})

        candidates: list[str] = []
        style = self._style(words, hint_words, overrides.get("style") or category.style)
        if style:
            candidates.append(style)
        for aspect in ("lighting", "composition", "mood", "detail"):
            if not _mentions(lower, _ASPECT_CUES[aspect]):
                candidates.append(overrides.get(aspect) or getattr(category, aspect))

        base = text.rstrip(" ,;.")
        added: list[str] = []
        enhanced = base
        for phrase in candidates:
            if phrase.lower() in enhanced.lower():
                continue
            longer = f"{enhanced}, {phrase}"
            if len(longer) > self._max_chars:
                break  # keep the cap; later phrases would only be dropped anyway
            enhanced = longer
            added.append(phrase)

        # Never negate what the user asked for ("a sign with text" keeps "text" out of the negative prompt).
        negative = [n for n in (*_BASE_NEGATIVE, *category.negative)
                    if not set(_WORD.findall(n)) & words]
        return Enhancement(original=original, enhanced=enhanced, negative_prompt=", ".join(negative),
                           added=tuple(added), provider=self.name)

    @staticmethod
    def _style(words: set[str], hint_words: set[str], default: str) -> str | None:
        # An explicit style in the prompt adds nothing; else the template's style; else the subject's default.
        if any(vocab & words for vocab, _phrase in _STYLES):
            return None
        for vocab, phrase in _STYLES:
            if vocab & hint_words:
                return phrase or default  # "" = photographic: the subject's own photo style
        return default
