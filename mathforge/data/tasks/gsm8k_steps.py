"""GSM8K training problems in the TSMC step layout (docs/methods/tsmc.md §e.3-§e.4): one step per solution line,
calculator annotations removed, `#### x` as the `# Answer` step. See `mathforge.data.steps`."""

from mathforge.data.steps import generate, gsm8k_step_examples

__all__ = ["generate", "gsm8k_step_examples"]
