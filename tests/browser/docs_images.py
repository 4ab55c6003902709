"""Copy the browser tests' screenshots into docs/images/kiosk/ for docs/kiosk.md, scaled down.

Run after the browser tests (``make screenshots`` does both): one language per viewport for
every screen (English, and Arabic on the phone to show the right-to-left layout).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "browser" / "artifacts"
TARGET = ROOT / "docs" / "images" / "kiosk"
SCREENS = [
    "welcome",
    "variant",
    "disclosure",
    "acknowledgement",
    "why",
    "end",
    "opted-out",
    "offline",
]
#: Width in the docs per viewport (a third of the kiosk, half of the tablet, the phone's own).
WIDTHS = {"kiosk": 360, "tablet": 384, "phone": 390}
SHOWN = [("kiosk", "en"), ("tablet", "en"), ("phone", "en"), ("phone", "ar")]


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = []
    for screen in SCREENS:
        for viewport, language in SHOWN:
            name = f"{screen}-{viewport}-{language}.png"
            # The welcome screen greets in every language; its page language is the first.
            source = SOURCE / (f"welcome-{viewport}-nl.png" if screen == "welcome" else name)
            if not source.exists():
                missing.append(name)
                continue
            with Image.open(source) as image:
                width = WIDTHS[viewport]
                height = round(image.height * width / image.width)
                scaled = image.convert("RGB").resize((width, height), Image.LANCZOS)
                scaled = scaled.quantize(colors=128, method=Image.MEDIANCUT)
                scaled.save(TARGET / name, optimize=True)
    if missing:
        print("missing screenshots (run the browser tests first):", ", ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
