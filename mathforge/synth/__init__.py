"""mathforge.synth: model-driven data synthesis in the JiuZhang3.0 style (Zhou et al. 2024;
docs/methods/synthesis.md §d): corpus → snippets (S1) → prompts (S2) → synthesis model (S3) → bulk generation (S4)
→ parsing (S5) → filtering (S6) → deduplication (S7) → decontamination (S8) → training (S9).

Each stage is a function on plain records (dicts read from and written to JSONL) with a
`mathforge synth <stage>` subcommand over it; every output folder holds a `manifest.json` with the
config, versions, inputs and counts. Imports: data, infer and grading only (docs/architecture.md).
"""
