"""ComfyUI node classes: thin shells over the library. One module per pipeline stage."""

from . import describe, detection, mllm, output, video, visual_prompts

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in (video, detection, visual_prompts, mllm, output, describe):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
