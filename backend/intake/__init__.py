"""Reference-clip intake, one for the bots, the CLI and the backend: sniff by content, decode within a fixed
memory budget whatever the headers claim, and judge the result as a voice (`clip` has the pipeline)."""

from backend.intake.clip import DEFAULT_LIMITS, Clip, ReferenceClip, load_audio, load_reference, read_reference, renamed
from backend.intake.limits import MIB, AudioLimits, check_size
from backend.intake.rejections import SUPPORTED

__all__ = [
    "DEFAULT_LIMITS", "MIB", "SUPPORTED", "AudioLimits", "Clip", "ReferenceClip", "check_size", "load_audio",
    "load_reference", "read_reference", "renamed",
]
