"""Task datasets for any tokenizer: prompts with their answers and corruptions (ioi)."""
