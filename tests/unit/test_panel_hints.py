"""javascript/singdiffusion.js hints: one per panel control, the same words as the argument schema's help."""

import json
import re
from pathlib import Path

from sing_core.args import FIELDS

SCRIPT = Path(__file__).resolve().parents[2] / "javascript" / "singdiffusion.js"


def hints() -> dict[str, str]:
    block = re.search(r"var hints = \{(.*?)\n    \};", SCRIPT.read_text(encoding="utf-8"), re.DOTALL)
    assert block, f"no `var hints = {{...}};` block in {SCRIPT}"
    return json.loads("{" + block.group(1).rstrip().rstrip(",") + "}")


def test_every_field_has_its_help_as_hint():
    assert {field.label: hints().get(field.label) for field in FIELDS} == {field.label: field.help for field in FIELDS}


def test_the_modules_accordion_has_a_hint():
    assert "convert" in hints()["Modules"]
