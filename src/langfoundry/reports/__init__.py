"""Coverage, evaluation, tokenizer and pull-request reports; reproducibility; the retrain decision."""
