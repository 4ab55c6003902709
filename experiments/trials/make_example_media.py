"""Make the example trials' media files (run from the repository root; the files are committed).

- ``organ-donation-2013/group-of-people.png``: a drawing of a group of people (Pillow), standing
  in for the photograph of the 2013 message.
- ``organ-donation-2013/register-logo.svg``: a stand-in logo (a heart and the words "Organ Donor
  Register"), written by hand below; not the NHS logo.
- ``tearoom-return-info/<arm>-en.ogg``: the English narration of each Tea Room arm, spoken by
  espeak-ng (Debian package ``espeak-ng``) and encoded as Ogg Opus by ``opusenc`` (Debian
  package ``opus-tools``). Synthetic voices; the transcripts are in the trial file.

All of them were made for nudgelab and are dedicated to the public domain (CC0 1.0).
``python experiments/trials/make_example_media.py`` writes them again; the narrations then
differ in their bytes (opusenc numbers its streams at random), so pin the new sha256 values.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
INK = (31, 95, 139)
PAPER = (251, 250, 247)

LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 160" width="480" height="160">\n'
    + """\
  <title>Organ Donor Register (stand-in logo drawn for nudgelab, CC0 1.0)</title>
  <rect width="480" height="160" rx="18" fill="#1f5f8b"/>
  <path d="M80 128 C20 86 24 34 62 34 C78 34 80 46 80 52 C80 46 82 34 98 34 C136 34 140 86 80 128 Z"
    fill="#ffffff"/>
  <rect x="74" y="58" width="12" height="40" fill="#1f5f8b"/>
  <rect x="60" y="72" width="40" height="12" fill="#1f5f8b"/>
  <text x="160" y="74" font-family="sans-serif" font-size="34" font-weight="700"
    fill="#ffffff">Organ Donor</text>
  <text x="160" y="116" font-family="sans-serif" font-size="34" font-weight="700"
    fill="#ffffff">Register</text>
</svg>
"""
)


def group_of_people(path: Path) -> None:
    """Seven simple figures of different heights, side by side, on a light ground."""
    width, height = 960, 540
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 430, width, height), fill=(226, 233, 240))
    colours = [(31, 95, 139), (196, 112, 48), (74, 140, 92), (150, 72, 120), (90, 90, 160),
               (180, 60, 60), (60, 130, 140)]  # fmt: skip
    for index, colour in enumerate(colours):
        x = 90 + index * 130
        scale = 1.0 - 0.12 * ((index * 3) % 4) / 3
        head = 34 * scale
        top = 430 - 330 * scale
        draw.ellipse((x - head, top, x + head, top + 2 * head), fill=colour)
        body_top = top + 2 * head + 8
        draw.rounded_rectangle((x - 52 * scale, body_top, x + 52 * scale, 430), 40, fill=colour)
    image.save(path, "PNG", optimize=True)


def narration(text: str, path: Path) -> None:
    """``text`` spoken by espeak-ng (English) and encoded as Ogg Opus at 16 kbit/s."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(wav), text], check=True)
        subprocess.run(
            ["opusenc", "--quiet", "--bitrate", "16", "--downmix-mono", str(wav), str(path)],
            check=True,
        )


def spoken(arm: dict) -> str:
    """What the narration of an arm says: its English title and body (``{figure}`` is said as
    a number shown on the screen, so that narration is declared a summary)."""
    material = arm["material"]["en"]
    body = material["body"].replace("{figure} people", "a number of people (shown on the screen)")
    return f"{material['title']}\n\n{body}"


def main() -> None:
    organ = HERE / "organ-donation-2013"
    organ.mkdir(exist_ok=True)
    group_of_people(organ / "group-of-people.png")
    (organ / "register-logo.svg").write_text(LOGO_SVG, encoding="utf-8")
    tearoom = HERE / "tearoom-return-info"
    tearoom.mkdir(exist_ok=True)
    trial = yaml.safe_load((HERE / "tearoom-return-info.yaml").read_text(encoding="utf-8"))
    for arm in trial["arms"]:
        narration(spoken(arm), tearoom / f"{arm['id'].replace('_', '-')}-en.ogg")


if __name__ == "__main__":
    main()
