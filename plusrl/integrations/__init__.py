"""plusrl inside other training stacks (TRL)."""
