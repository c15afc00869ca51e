"""params.yaml's vision section: image-and-text examples for a vision-language model, built from OCR records
whose frame (or page crop) was kept (media.video.keep_frames).

langfoundry.core.config puts it on Params as `vision`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from langfoundry.core.strict_yaml import Strict

VISION_TASKS = ("transcribe", "translate")


class VisionParams(Strict):
    """Off by default: the vision stage then writes empty files and the text pipeline is unchanged."""
    enabled: bool = False
    tasks: list[Literal["transcribe", "translate"]] = ["transcribe", "translate"]  # translate: records with a pivot
    templates: dict[str, str] = {
        "transcribe": "Transcribe the {source_name} text written on this board.",
        "translate": "Translate the {source_name} text written on this board into {target_name}.",
    }

    @field_validator("templates")
    @classmethod
    def _known_templates(cls, templates: dict[str, str]) -> dict[str, str]:
        missing = [task for task in VISION_TASKS if task not in templates]
        if missing:
            raise ValueError(f"give a template for {', '.join(missing)} (placeholders {{source_name}}, {{target_name}})")
        return templates
