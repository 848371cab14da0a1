"""HF PEFT interop: a bundle's adapters as PEFT adapters on the bundle's T5, and back: LoRA as PEFT
LoRA, and prefixes as PEFT prefix tuning when the bundle's prefixes are PEFT's (attention "peft").

    python -m hypert5.peft_interop export|tune|import --help

``convert`` maps tensors and configs (no HTTP; peft itself is not needed to convert), ``base_model``
builds the matching ``T5ForConditionalGeneration`` from a bundle (``downstream.safetensors``), ``cli``
talks to the service.
"""

from .convert import PREFIX_REFUSAL, InteropError, check_peft_config, native_to_peft, peft_to_native

__all__ = ["PREFIX_REFUSAL", "InteropError", "check_peft_config", "native_to_peft", "peft_to_native"]
